// push_webpush.js: npm `web-push` as a real application server for push_test.sh (NODE_PATH points
// at the build tree's npm folder).
//   node push_webpush.js keys                  -> {"publicKey": ..., "privateKey": ...} (VAPID, base64url)
//   node push_webpush.js send ENDPOINT P256DH AUTH KEYSFILE PAYLOAD
//                                              -> "<status> <Location>" of sendNotification
//   node push_webpush.js ua-keys FILE          -> a user agent's key and auth secret (node's ECDH) in
//                                                 FILE; stdout: the PushSubscription "keys" object
//   node push_webpush.js decrypt FILE          -> SSE events on stdin decrypted by npm http_ece, one
//                                                 plaintext a line
//   node push_webpush.js verify-vapid AUTHORIZATION AUD
//                                              -> "ok" when node's crypto verifies the ES256 token
//                                                 with k, aud is AUD and exp is in the future
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const readline = require('readline');
const webpush = require('web-push');
const ece = require('http_ece');

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'keys') {
  console.log(JSON.stringify(webpush.generateVAPIDKeys()));
} else if (cmd === 'send') {
  const [endpoint, p256dh, auth, keysFile, payload] = args;
  const keys = JSON.parse(fs.readFileSync(keysFile, 'utf8'));
  webpush.setVapidDetails('mailto:test@example.net', keys.publicKey, keys.privateKey);
  webpush
    .sendNotification({ endpoint, keys: { p256dh, auth } }, payload, { TTL: 600, urgency: 'high' })
    .then((r) => console.log(`${r.statusCode} ${r.headers.location || ''}`))
    .catch((e) => {
      console.log(`${e.statusCode || 'error'} ${e.body || e.message}`);
      process.exitCode = 1;
    });
} else if (cmd === 'ua-keys') {
  const ua = crypto.createECDH('prime256v1');
  ua.generateKeys();
  const keys = { p256dh: ua.getPublicKey('base64url'), auth: crypto.randomBytes(16).toString('base64url') };
  fs.writeFileSync(args[0], JSON.stringify({ ...keys, privateKey: ua.getPrivateKey('base64url') }), { mode: 0o600 });
  console.log(JSON.stringify(keys));
} else if (cmd === 'decrypt') {
  const st = JSON.parse(fs.readFileSync(args[0], 'utf8'));
  const ua = crypto.createECDH('prime256v1');
  ua.setPrivateKey(Buffer.from(st.privateKey, 'base64url'));
  const rl = readline.createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (!line.startsWith('data: ')) return;
    const ev = JSON.parse(line.slice(6));
    const body = Buffer.from(ev.body, 'base64url');
    const plain = ece.decrypt(body, { version: 'aes128gcm', privateKey: ua, authSecret: Buffer.from(st.auth, 'base64url') });
    console.log(plain.toString());
  });
} else if (cmd === 'verify-vapid') {
  const [authorization, aud] = args;
  const params = Object.fromEntries(authorization.replace(/^vapid\s+/i, '').split(/\s*,\s*/).map((p) => p.split('=')));
  const [h, c, sig] = params.t.split('.');
  const point = Buffer.from(params.k, 'base64url');
  const key = crypto.createPublicKey({
    key: { kty: 'EC', crv: 'P-256', x: point.subarray(1, 33).toString('base64url'), y: point.subarray(33).toString('base64url') },
    format: 'jwk',
  });
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${c}`), { key, dsaEncoding: 'ieee-p1363' }, Buffer.from(sig, 'base64url'));
  const claims = JSON.parse(Buffer.from(c, 'base64url').toString());
  const header = JSON.parse(Buffer.from(h, 'base64url').toString());
  const now = Math.floor(Date.now() / 1000);
  console.log(ok && header.alg === 'ES256' && claims.aud === aud && claims.exp > now ? 'ok' : `bad ${ok} ${JSON.stringify(claims)}`);
} else {
  console.error('usage: push_webpush.js keys | send ENDPOINT P256DH AUTH KEYSFILE PAYLOAD | ua-keys FILE | decrypt FILE | verify-vapid AUTHORIZATION AUD');
  process.exitCode = 2;
}
