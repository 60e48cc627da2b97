// A real gRPC client for grpc_server_test.cc: @grpc/grpc-js (npm, installed by the test into the
// build tree) calls the test's server over h2c with raw bytes as messages (no .proto needed) and
// prints one JSON line per call: the messages it received, the status code and its details.
// Usage: NODE_PATH=<dir>/node_modules node grpc_js_peer.js PORT
'use strict';
const grpc = require('@grpc/grpc-js');

const port = process.argv[2];
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const raw = (b) => b;

// bidi: writes each message, ends, and resolves with what came back and the status.
function bidi(name, path, messages, deadlineMs) {
  return new Promise((resolve) => {
    const got = [];
    const call = client.makeBidiStreamRequest(path, raw, raw, new grpc.Metadata(),
      { deadline: Date.now() + deadlineMs });
    call.on('data', (b) => got.push(b.toString('utf8')));
    call.on('error', () => {});  // the status event carries it
    call.on('status', (s) => resolve({ name, got, code: s.code, details: s.details }));
    for (const m of messages) call.write(Buffer.from(m, 'utf8'));
    call.end();
  });
}

(async () => {
  const results = [];
  results.push(await bidi('echo', '/test.Echo/Echo', ['hello', '', 'world'], 20000));
  results.push(await bidi('fail', '/test.Echo/Echo', ['one', 'fail:3:bad: 100%\ncafé'], 20000));
  results.push(await bidi('unknown', '/test.Nope/Nope', ['x'], 20000));
  results.push(await bidi('big', '/test.Echo/Echo', ['a'.repeat(65)], 20000));
  for (const r of results) console.log(JSON.stringify(r));
  client.close();
})();
