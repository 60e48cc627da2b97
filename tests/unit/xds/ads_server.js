// A control plane for xds_client_test.cc (tests/integration): @grpc/grpc-js serves
// StreamAggregatedResources on 127.0.0.1 (h2c), protobufjs encodes ugate's subset of the Envoy
// protos (src/xds/proto). It answers CDS with the EDS cluster NAME and EDS with NAME's endpoint
// 127.0.0.1:BACKEND_PORT (version 1); once that EDS response is ACKed it sends version 2 with an
// endpoint that is a host name (invalid: the client must NACK it and keep version 1). It prints
// "listening PORT PID" first, then one line per request: "req <cds|eds> v=<version_info>
// nonce=<nonce> names=<names>" plus " nack=<error_detail.message>" for a NACK.
// PAD (optional, default 0): each assignment also carries PAD UNHEALTHY endpoints after that one
// (127.0.1.x, never chosen while it is healthy): a response big enough that ugated decodes it off
// worker 0's loop (src/xds/ads_client.cc, kDecodeInline).
// Usage: NODE_PATH=<dir>/node_modules node ads_server.js NAME BACKEND_PORT PROTO_DIR [PAD]
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const [name, backendPort, protoDir, pad] = process.argv.slice(2);
const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(protoDir, target);
root.loadSync([
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
], { keepCase: true });
const T = (n) => root.lookupType(n);
const Req = T('envoy.service.discovery.v3.DiscoveryRequest');
const Resp = T('envoy.service.discovery.v3.DiscoveryResponse');
const P = 'type.googleapis.com/';
const CDS = P + 'envoy.config.cluster.v3.Cluster';
const EDS = P + 'envoy.config.endpoint.v3.ClusterLoadAssignment';

function cluster() {
  const C = T('envoy.config.cluster.v3.Cluster');
  return C.encode(C.create({ name, type: 3, eds_cluster_config: { eds_config: { ads: {} } } })).finish();
}
function assignment(host) {
  const A = T('envoy.config.endpoint.v3.ClusterLoadAssignment');
  const lb = [{ endpoint: { address: { socket_address: { address: host, port_value: Number(backendPort) } } } }];
  for (let i = 0; i < Number(pad || 0); i += 1) {
    lb.push({ health_status: 2, endpoint: { address: { socket_address: {
      address: `127.0.1.${1 + (i % 250)}`, port_value: 1 + Math.floor(i / 250) } } } });
  }
  return A.encode(A.create({
    cluster_name: name,
    endpoints: [{ locality: { region: 'test' }, lb_endpoints: lb }],
  })).finish();
}

const server = new grpc.Server();
server.register('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', (call) => {
  let nonce = 0;
  const send = (type, version, value) => {
    nonce += 1;
    call.write(Resp.create({ version_info: version, type_url: type, nonce: String(nonce),
                             resources: [{ type_url: type, value }] }));
    return String(nonce);
  };
  let edsGood = '';
  call.on('data', (r) => {
    const kind = r.type_url === CDS ? 'cds' : r.type_url === EDS ? 'eds' : r.type_url;
    const nack = r.error_detail ? ` nack=${r.error_detail.message}` : '';
    console.log(`req ${kind} v=${r.version_info} nonce=${r.response_nonce} names=${r.resource_names}${nack}`);
    if (!r.response_nonce && kind === 'cds') send(CDS, '1', cluster());
    if (!r.response_nonce && kind === 'eds') edsGood = send(EDS, '1', assignment('127.0.0.1'));
    if (kind === 'eds' && r.response_nonce === edsGood && !r.error_detail) send(EDS, '2', assignment('backend.example'));
  });
  call.on('end', () => call.end());
}, (m) => Resp.encode(m).finish(), (b) => Req.decode(b), 'bidi');
server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.log(`error ${err.message}`);
    process.exit(1);
  }
  console.log(`listening ${port} ${process.pid}`);
});
