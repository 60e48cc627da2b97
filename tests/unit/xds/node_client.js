// A client of ugate's own resource type for xds_server_test.cc: @grpc/grpc-js opens
// StreamAggregatedResources to 127.0.0.1:PORT, subscribes to every type.googleapis.com/ugate.v1.Node
// (wildcard), prints "node <id> name=<name> source=<source> mesh=<mesh_tcp> via=<via>" (and, for an
// association, " from=<connected_from> spiffe=<spiffe>") for each resource of the first response, ACKs it and exits ("timeout" after 10 s).
// Usage: NODE_PATH=<dir>/node_modules node node_client.js PORT PROTO_DIR
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const [port, protoDir] = process.argv.slice(2);
const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(protoDir, target);
root.loadSync(['envoy/service/discovery/v3/discovery.proto', 'ugate/v1/node.proto'], { keepCase: true });
const Req = root.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
const Resp = root.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const Node = root.lookupType('ugate.v1.Node');
const type = 'type.googleapis.com/ugate.v1.Node';

const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const call = client.makeBidiStreamRequest(
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
  (m) => Buffer.from(Req.encode(m).finish()), (b) => Resp.decode(b), new grpc.Metadata());
const timer = setTimeout(() => { console.log('timeout'); process.exit(1); }, 10000);
call.on('data', (r) => {
  for (const any of r.resources) {
    const n = Node.decode(any.value);
    const assoc = n.source === 'association' ? ` from=${n.connected_from} spiffe=${n.spiffe}` : '';
    console.log(`node ${n.id} name=${n.name} source=${n.source} mesh=${n.mesh_tcp} via=${n.via}${assoc}`);
  }
  call.write(Req.create({ type_url: type, version_info: r.version_info, response_nonce: r.nonce }));
  clearTimeout(timer);
  call.end();
  setTimeout(() => process.exit(0), 100);
});
call.on('error', (e) => console.log(`error ${e.code} ${e.details}`));
call.write(Req.create({ type_url: type, node: { id: 'node-client', cluster: 'test' } }));
