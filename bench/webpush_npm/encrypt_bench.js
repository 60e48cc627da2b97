// npm web-push's RFC 8291 (aes128gcm) encryption rate per CPU second of this process, for the same
// payload size as bench/webpush_crypto_bench.cc. Usage: node encrypt_bench.js [seconds] [bytes]
'use strict';
const crypto = require('crypto');
const webpush = require('web-push');

const seconds = Number(process.argv[2] || 3);
const bytes = Number(process.argv[3] || 3072);
const ua = crypto.createECDH('prime256v1');
ua.generateKeys();
const p256dh = ua.getPublicKey().toString('base64url');
const auth = crypto.randomBytes(16).toString('base64url');
const payload = Buffer.alloc(bytes, 'm');

// One round trip through the library's own decrypt (http_ece) first, so a broken setup shows.
const ece = require('http_ece');
const one = webpush.encrypt(p256dh, auth, payload, 'aes128gcm');
const back = ece.decrypt(one.cipherText, {
  version: 'aes128gcm', privateKey: ua, authSecret: Buffer.from(auth, 'base64url'),
});
if (!back.equals(payload)) throw new Error('web-push round trip failed');

const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1e6; };
const start = cpu();
let ops = 0;
let elapsed = 0;
while (elapsed < seconds) {
  for (let i = 0; i < 64; i++) webpush.encrypt(p256dh, auth, payload, 'aes128gcm');
  ops += 64;
  elapsed = cpu() - start;
}
console.log(`npm-web-push encrypt payload=${bytes} B  ${ops} ops in ${elapsed.toFixed(2)} CPU s  ` +
            `${(ops / elapsed).toFixed(0)} ops/s per core`);
