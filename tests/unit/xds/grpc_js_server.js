// A real gRPC server for grpc_client_test.cc: @grpc/grpc-js (npm, installed by the test into the
// build tree) serves /test.Echo/Echo (bidi, raw bytes as messages) on 127.0.0.1 over h2c and
// prints "listening PORT PID". Each message comes back as "js:" + it; the message "fail" ends the
// call with FAILED_PRECONDITION and a message that needs percent-encoding; the client's end of
// sending ends the call OK. Runs until killed. With TAG, replies start with TAG + ":" instead of
// "js:" (xds_server_test.cc tells two backends apart).
// Usage: NODE_PATH=<dir>/node_modules node grpc_js_server.js [TAG]
'use strict';
const grpc = require('@grpc/grpc-js');

const raw = (b) => b;
const tag = process.argv[2] || 'js';
const server = new grpc.Server();
server.register('/test.Echo/Echo', (call) => {
  call.on('data', (b) => {
    if (b.toString('utf8') === 'fail') {
      call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: 'js says no: 100%\ncafé' });
      return;
    }
    call.write(Buffer.concat([Buffer.from(tag + ':'), b]));
  });
  call.on('end', () => call.end());
}, raw, raw, 'bidi');
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.log(`error ${err.message}`);
    process.exit(1);
  }
  console.log(`listening ${port} ${process.pid}`);
});
