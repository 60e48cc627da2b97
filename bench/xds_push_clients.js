// N ADS clients for bench/xds_push_bench.py: each its own @grpc/grpc-js channel (its own HTTP/2
// connection, as N proxyless processes would have), subscribed by delta ADS to the four resources of
// one service. Prints "ready" once every client has its first ClusterLoadAssignment, then, when the
// bench changes the service, one JSON line with each client's arrival time of the changed one
// (Date.now(), ms) and exits.
// Usage: NODE_PATH=<dir>/node_modules node xds_push_clients.js PORT NAME N PROTO_DIR
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const [port, name, nStr, protoDir] = process.argv.slice(2);
const n = Number(nStr);
const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(protoDir, target);
root.loadSync(['envoy/service/discovery/v3/discovery.proto'], { keepCase: true });
const Req = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const Resp = root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
const P = 'type.googleapis.com/envoy.config.';
const types = [P + 'listener.v3.Listener', P + 'route.v3.RouteConfiguration', P + 'cluster.v3.Cluster',
  P + 'endpoint.v3.ClusterLoadAssignment'];
const eds = types[3];
const method = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

let ready = 0;
let changed = 0;
const arrivals = new Array(n).fill(0);
for (let i = 0; i < n; ++i) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = client.makeBidiStreamRequest(method, (m) => Buffer.from(Req.encode(Req.create(m)).finish()),
    (b) => Resp.decode(b), new grpc.Metadata());
  let first = null;
  call.on('data', (r) => {
    call.write({ type_url: r.type_url, response_nonce: r.nonce });
    if (r.type_url !== eds || !r.resources.length) return;
    const v = r.resources[0].version;
    if (first === null) {
      first = v;
      if (++ready === n) console.log('ready');
    } else if (v !== first && !arrivals[i]) {
      arrivals[i] = Date.now();
      if (++changed === n) {
        console.log(JSON.stringify({ arrivals }));
        process.exit(0);
      }
    }
  });
  call.on('error', (e) => { console.log(`error ${e.code} ${e.details}`); process.exit(1); });
  types.forEach((t, k) => call.write({
    type_url: t, resource_names_subscribe: [name],
    ...(k === 0 ? { node: { id: `bench-${i}`, cluster: 'bench', user_agent_name: 'xds_push_clients.js' } } : {}),
  }));
}
setTimeout(() => { console.log(`timeout ready=${ready} changed=${changed}`); process.exit(1); }, 60000);
