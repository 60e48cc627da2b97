// A test control plane for ambient_test.sh: @grpc/grpc-js serves DeltaAggregatedResources (h2c)
// with the Istio ambient types, encoded by protobufjs from ugate's subset of Istio's protos
// (src/xds/proto/istio): istio.workload.Address (the Service VIP:80 -> target 8080 and one
// endpoint workload, HBONE) and istio.security.Authorization (none at first). Commands on stdin,
// (or the file COMMANDS, a FIFO), one per line, change the state and push it to every open stream:
//   deny PRINCIPAL   a GLOBAL DENY policy "server/deny" for that principal
//   allow            the DENY policy removed (removed_resources)
//   move             the endpoint moves: workload w2 added, w1 removed
// It prints "listening PORT PID" first, then one line per request:
//   "req <address|authorization> nonce=<n> sub=<names> node=<id> meta=<NAME,NAMESPACE,...> auth=<header>"
// plus " nack=<message>" for a NACK.
// Usage: NODE_PATH=<dir>/node_modules node ambient_cp.js PROTO_DIR ADDRESS VIP W1_IP W2_IP SERVER_SA [COMMANDS]
'use strict';
const fs = require('fs');
const path = require('path');
const readline = require('readline');
const grpc = require('@grpc/grpc-js');
const protobuf = require('protobufjs');

const [protoDir, bindAddr, vip, w1Ip, w2Ip, serverSa, commands] = process.argv.slice(2);
const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(protoDir, target);
root.loadSync([
  'envoy/service/discovery/v3/discovery.proto',
  'istio/workload/workload.proto',
  'istio/security/authorization.proto',
], { keepCase: true });
const T = (n) => root.lookupType(n);
const Req = T('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const Resp = T('envoy.service.discovery.v3.DeltaDiscoveryResponse');
const Address = T('istio.workload.Address');
const Authorization = T('istio.security.Authorization');
const P = 'type.googleapis.com/';
const ADDR = P + 'istio.workload.Address';
const AUTHZ = P + 'istio.security.Authorization';

const ip4 = (s) => Buffer.from(s.split('.').map(Number));
const SVC = 'server/echo.server.svc.cluster.local';
function workload(uid, ip, sa = serverSa) {
  return Address.encode(Address.create({ workload: {
    uid, name: uid, namespace: 'server', addresses: [ip4(ip)], tunnel_protocol: 1, trust_domain: 'ambient.test',
    service_account: sa, node: 'srv',
    services: { [SVC]: { ports: [{ service_port: 80, target_port: 8080 }] } },
  } })).finish();
}
function service() {
  return Address.encode(Address.create({ service: {
    name: 'echo', namespace: 'server', hostname: 'echo.server.svc.cluster.local',
    addresses: [{ network: '', address: ip4(vip) }], ports: [{ service_port: 80, target_port: 8080 }],
  } })).finish();
}
function denyPolicy(principal) {
  return Authorization.encode(Authorization.create({
    name: 'deny', namespace: 'server', scope: 0, action: 1,
    rules: [{ clauses: [{ matches: [{ principals: [{ exact: principal }] }] }] }],
  })).finish();
}

// The state: name -> bytes, per type; version = a counter.
let version = 1;
const state = { [ADDR]: new Map([[SVC, service()], ['w1', workload('w1', w1Ip)]]), [AUTHZ]: new Map() };
const streams = new Set();
let nonce = 0;
function push(call, type, names, removed) {
  nonce += 1;
  call.write(Resp.create({
    system_version_info: String(version), type_url: type, nonce: String(nonce),
    resources: names.map((n) => ({ name: n, version: String(version), resource: { type_url: type, value: state[type].get(n) } })),
    removed_resources: removed,
  }));
}
function change(type, names, removed) {
  version += 1;
  for (const call of streams) {
    if (call.subscribed.has(type)) push(call, type, names, removed);
  }
}

const server = new grpc.Server();
server.register('/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources', (call) => {
  call.subscribed = new Set();
  streams.add(call);
  const auth = (call.metadata.get('authorization')[0] || '').toString();
  call.on('data', (r) => {
    const kind = r.type_url === ADDR ? 'address' : r.type_url === AUTHZ ? 'authorization' : r.type_url;
    const nack = r.error_detail ? ` nack=${r.error_detail.message}` : '';
    const meta = r.node && r.node.metadata ? Object.keys(r.node.metadata.fields).sort()
      .map((k) => {
        const v = r.node.metadata.fields[k];  // protobufjs' built-in Struct names its fields in camelCase
        return `${k}=${v.string_value !== undefined ? v.string_value : v.stringValue}`;
      }).join(',') : '';
    console.log(`req ${kind} nonce=${r.response_nonce} sub=${r.resource_names_subscribe} node=${r.node ? r.node.id : ''} ` +
                `meta=${meta} auth=${auth}${nack}`);
    if (!state[r.type_url] || r.response_nonce) return;
    call.subscribed.add(r.type_url);
    const have = r.initial_resource_versions || {};
    push(call, r.type_url, [...state[r.type_url].keys()].filter((n) => have[n] !== String(version)), []);
  });
  call.on('end', () => { streams.delete(call); call.end(); });
  call.on('error', () => streams.delete(call));
  call.on('cancelled', () => streams.delete(call));
}, (m) => Resp.encode(m).finish(), (b) => Req.decode(b), 'bidi');

readline.createInterface({ input: commands ? fs.createReadStream(commands) : process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === 'deny') {
    state[AUTHZ].set('server/deny', denyPolicy(arg));
    change(AUTHZ, ['server/deny'], []);
  } else if (cmd === 'allow') {
    state[AUTHZ].delete('server/deny');
    change(AUTHZ, [], ['server/deny']);
  } else if (cmd === 'move') {
    state[ADDR].delete('w1');
    state[ADDR].set('w2', workload('w2', w2Ip));
    change(ADDR, ['w2'], ['w1']);
  } else if (cmd === 'impostor') {  // w2 said to run as another service account than its certificate's
    state[ADDR].set('w2', workload('w2', w2Ip, arg));
    change(ADDR, ['w2'], []);
  }
  console.log(`did ${cmd}`);
});

server.bindAsync(bindAddr, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) {
    console.log(`error ${err.message}`);
    process.exit(1);
  }
  console.log(`listening ${port} ${process.pid}`);
});
