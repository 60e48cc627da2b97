// A proxyless gRPC client for xds_server_test.cc: @grpc/grpc-js-xds resolves xds:///NAME through
// ugated's ADS server (the bootstrap points at 127.0.0.1:PORT, h2c) and calls /test.Echo/Echo on
// the backend the resources name (tests/unit/xds/grpc_js_server.js with a tag), every 100 ms. It
// prints each reply that differs from the one before ("reply TAG:hi"), and exits 0 once a reply
// starts with WANT (or 1 after 30 s: "timeout").
// Usage: NODE_PATH=<dir>/node_modules node xds_client.js PORT NAME WANT
'use strict';
const [port, name, want] = process.argv.slice(2);
process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
  xds_servers: [{ server_uri: `127.0.0.1:${port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
  node: { id: 'xds-client-test', cluster: 'test', locality: {}, metadata: {} },
});
const grpc = require('@grpc/grpc-js');
require('@grpc/grpc-js-xds').register();

const raw = (b) => b;
const client = new grpc.Client(`xds:///${name}`, grpc.credentials.createInsecure());
let last = '';

function once() {
  const call = client.makeBidiStreamRequest('/test.Echo/Echo', raw, raw, new grpc.Metadata(),
    { deadline: Date.now() + 5000 });
  let got = '';
  call.on('data', (b) => { got += b.toString('utf8'); });
  call.on('error', () => {});
  call.on('status', (s) => {
    const line = s.code === 0 ? `reply ${got}` : `error ${s.code} ${s.details}`;
    if (line !== last) console.log(line);
    last = line;
    if (s.code === 0 && got.startsWith(want)) process.exit(0);
    setTimeout(once, 100);
  });
  call.write(Buffer.from('hi'));
  call.end();
}
once();
setTimeout(() => { console.log('timeout'); process.exit(1); }, 30000);
