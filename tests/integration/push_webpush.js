// push_webpush.js: npm `web-push` as a real application server for push_test.sh (NODE_PATH points
// at the build tree's npm folder).
//   node push_webpush.js keys                  -> {"publicKey": ..., "privateKey": ...} (VAPID, base64url)
//   node push_webpush.js send ENDPOINT P256DH AUTH KEYSFILE PAYLOAD
//                                              -> "<status> <Location>" of sendNotification
'use strict';
const fs = require('fs');
const webpush = require('web-push');

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
} else {
  console.error('usage: push_webpush.js keys | send ENDPOINT P256DH AUTH KEYSFILE PAYLOAD');
  process.exitCode = 2;
}
