// An ADS client for xds_server_test.cc (tests/integration): @grpc/grpc-js carries the stream, and
// protobufjs (installed with grpc-js, by its proto-loader) encodes and decodes ugate's own subset
// of the Envoy protos (src/xds/proto). It subscribes to one name the way @grpc/grpc-js-xds does
// (SotW: LDS, then RDS, CDS, EDS as each answer names the next; delta: all four at once), ACKs
// every response, and prints one line per response:
//   resp <lds|rds|cds|eds> v=<version> n=<count> [removed=<names>] <what the resource says>
// then "ready" once all four arrived, "changed" when a later EDS response differs from the first
// (then it ends the stream), or "timeout". Mode sotw-nack or delta-nack NACKs the first EDS
// response instead (and prints "nacked"); the stream's end is printed as "error|status CODE DETAILS".
// Usage: NODE_PATH=<dir>/node_modules node ads_client.js PORT NAME sotw|delta[-nack] PROTO_DIR
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const [port, name, mode, protoDir] = process.argv.slice(2);
const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(protoDir, target);
root.loadSync([
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
], { keepCase: true });
const T = (n) => root.lookupType(n);
const P = 'type.googleapis.com/';
const types = {
  lds: P + 'envoy.config.listener.v3.Listener',
  rds: P + 'envoy.config.route.v3.RouteConfiguration',
  cds: P + 'envoy.config.cluster.v3.Cluster',
  eds: P + 'envoy.config.endpoint.v3.ClusterLoadAssignment',
};
const short = (url) => Object.keys(types).find((k) => types[k] === url) || url;
const order = ['lds', 'rds', 'cds', 'eds'];
const node = { id: 'ads-client-test', cluster: 'test', locality: {}, user_agent_name: 'ads_client.js' };

// describe: what one resource says, as the test checks it.
function describe(kind, bytes) {
  switch (kind) {
    case 'lds': {
      const l = T('envoy.config.listener.v3.Listener').decode(bytes);
      const hcm = T('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager')
        .decode(l.api_listener.api_listener.value);
      const filters = (hcm.http_filters || []).map((f) => f.typed_config.type_url.split('.').pop());
      return `name=${l.name} rds=${hcm.rds.route_config_name} ads=${!!hcm.rds.config_source.ads} filters=${filters}`;
    }
    case 'rds': {
      const r = T('envoy.config.route.v3.RouteConfiguration').decode(bytes);
      const vh = r.virtual_hosts[0];
      const rt = vh.routes[0];
      return `name=${r.name} domains=${vh.domains} prefix_set=${rt.match.prefix !== undefined} cluster=${rt.route.cluster}`;
    }
    case 'cds': {
      const c = T('envoy.config.cluster.v3.Cluster').decode(bytes);
      return `name=${c.name} type=${c.type} eds=${c.eds_cluster_config.service_name}`;
    }
    case 'eds': {
      const a = T('envoy.config.endpoint.v3.ClusterLoadAssignment').decode(bytes);
      const eps = [];
      for (const l of a.endpoints) {
        for (const e of l.lb_endpoints) {
          const sa = e.endpoint.address.socket_address;
          eps.push(`${sa.address}:${sa.port_value}/${e.load_balancing_weight ? e.load_balancing_weight.value : ''}`);
        }
      }
      return `name=${a.cluster_name} locality=${!!a.endpoints[0].locality} lw=${a.endpoints[0].load_balancing_weight.value} endpoints=${eps}`;
    }
  }
  return '';
}

const delta = mode.startsWith('delta');
const nackFirstEds = mode.endsWith('-nack');
let nacked = false;
const Req = T(delta ? 'envoy.service.discovery.v3.DeltaDiscoveryRequest' : 'envoy.service.discovery.v3.DiscoveryRequest');
const Resp = T(delta ? 'envoy.service.discovery.v3.DeltaDiscoveryResponse' : 'envoy.service.discovery.v3.DiscoveryResponse');
const method = '/envoy.service.discovery.v3.AggregatedDiscoveryService/' +
  (delta ? 'DeltaAggregatedResources' : 'StreamAggregatedResources');
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const call = client.makeBidiStreamRequest(method, (m) => Buffer.from(Req.encode(Req.create(m)).finish()),
  (b) => Resp.decode(b), new grpc.Metadata());
const seen = {};
let firstEds = null;
let sentNode = false;
let finished = false;

function send(m) {
  if (!sentNode) m.node = node;  // the node in the first request only, as grpc-js-xds does
  sentNode = true;
  call.write(m);
}
function subscribe(kind) {
  if (delta) send({ type_url: types[kind], resource_names_subscribe: [name] });
  else send({ type_url: types[kind], resource_names: [name] });
}
function finish(line, code) {
  if (finished) return;
  finished = true;
  console.log(line);
  call.end();
  setTimeout(() => process.exit(code), 200);
}

call.on('data', (r) => {
  const kind = short(r.type_url);
  const descs = (r.resources || []).map((x) => describe(kind, delta ? x.resource.value : x.value));
  const removed = delta && r.removed_resources.length ? ` removed=${r.removed_resources}` : '';
  const version = delta ? r.system_version_info : r.version_info;
  console.log(`resp ${kind} v=${version} n=${descs.length}${removed} ${descs.join(' | ')}`);
  if (kind === 'eds' && nackFirstEds && !nacked) {
    // NACK: the nonce with error_detail; the version stays the last accepted one (none yet).
    nacked = true;
    const error_detail = { code: 14, message: 'test nack' };
    if (delta) send({ type_url: r.type_url, response_nonce: r.nonce, error_detail });
    else send({ type_url: r.type_url, version_info: '', resource_names: [name], response_nonce: r.nonce, error_detail });
    console.log('nacked');
    return;
  }
  // ACK: the response's nonce (and, SotW, its version and the same names).
  if (delta) send({ type_url: r.type_url, response_nonce: r.nonce });
  else send({ type_url: r.type_url, version_info: r.version_info, resource_names: [name], response_nonce: r.nonce });
  const first = !seen[kind];
  seen[kind] = true;
  if (!delta && first && order.indexOf(kind) < 3) subscribe(order[order.indexOf(kind) + 1]);
  if (kind === 'eds') {
    if (firstEds === null) {
      firstEds = descs.join(' | ');
    } else if (descs.join(' | ') !== firstEds || removed) {
      finish('changed', 0);
      return;
    }
  }
  if (first && order.every((k) => seen[k])) console.log('ready');
});
call.on('error', (e) => finish(`error ${e.code} ${e.details}`, 1));
call.on('status', (s) => finish(`status ${s.code} ${s.details}`, s.code === 0 ? 0 : 1));
setTimeout(() => finish('timeout', 1), 20000);

if (delta) order.forEach(subscribe);
else subscribe('lds');
