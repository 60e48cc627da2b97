// A probe of ugated's ugate.v1.Message mailboxes for push_xds_test.sh: @grpc/grpc-js opens
// StreamAggregatedResources over mutual TLS (the given certificate and key, the CA's roots; the
// server's certificate names a SPIFFE ID, not 127.0.0.1, so only the chain is checked), subscribes
// to ugate.v1.Message by NAME, and prints one line per mailbox of the first response
// ("mailbox <recipient> n=<envelopes> encodings=<content_encoding,...> plaintext=<yes|no>": whether
// PLAINTEXT occurs in any ciphertext), or "none" when no response came within 2 s. Then it exits.
// Usage: NODE_PATH=<npm>/node_modules node mailbox_probe.js PORT PROTO_DIR ROOTS CERT KEY NAME PLAINTEXT
'use strict';
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const [port, protoDir, roots, cert, key, name, plaintext] = process.argv.slice(2);
const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(protoDir, target);
root.loadSync(['envoy/service/discovery/v3/discovery.proto', 'ugate/v1/message.proto'], { keepCase: true });
const Req = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const Resp = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const Message = root.lookupType('ugate.v1.Message');
const type = 'type.googleapis.com/ugate.v1.Message';

const creds = grpc.credentials.createSsl(fs.readFileSync(roots), fs.readFileSync(key), fs.readFileSync(cert),
  { checkServerIdentity: () => undefined });
const client = new grpc.Client(`127.0.0.1:${port}`, creds);
const call = client.makeBidiStreamRequest(
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  (m) => Buffer.from(Req.encode(m).finish()), (b) => Resp.decode(b), new grpc.Metadata());
const done = () => { call.cancel(); client.close(); process.exit(0); };
const timer = setTimeout(() => { console.log('none'); done(); }, 2000);
call.on('data', (r) => {
  clearTimeout(timer);
  if (r.resources.length === 0) console.log('none');
  for (const any of r.resources) {
    const m = Message.decode(any.value);
    const clear = m.envelopes.some((e) => Buffer.from(e.ciphertext).includes(Buffer.from(plaintext)));
    console.log(`mailbox ${m.recipient} n=${m.envelopes.length} ` +
      `encodings=${m.envelopes.map((e) => e.content_encoding).join(',')} plaintext=${clear ? 'yes' : 'no'}`);
  }
  done();
});
call.on('error', (e) => { console.log(`error ${e.code} ${e.details}`); process.exit(0); });
call.write({ node: { id: 'mailbox-probe', cluster: 'test' }, type_url: type, resource_names: [name] });
