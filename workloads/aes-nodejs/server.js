// aes-nodejs: vSwarm's aes-nodejs (benchmarks/aes/nodejs/server.js): AES with crypto-js.
//
// As in vSwarm: CryptoJS.AES.encrypt with the UTF-8 bytes of the 32-character key (AES-256),
// the IV "0000000000000000" (UTF-8 bytes), crypto-js's defaults (CBC, PKCS#7), the hex
// ciphertext, and the reply text exactly as vSwarm formats it (no "|" before "ciphertext").
// An empty or "world" request is replaced by the default plaintext. vSwarm's tracing (off unless
// ENABLE_TRACING is set) is not built in; --zipkin is accepted and ignored.
const process = require('process');
const CryptoJS = require('crypto-js');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const packageDefinition = protoLoader.loadSync(__dirname + '/proto/aes.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const aesProto = grpc.loadPackageDefinition(packageDefinition).aes;

let key = '6368616e676520746869732070617373';
let defaultPlaintext = 'defaultplaintext';
const iv = '0000000000000000';

function parseArgs() {
  const { argv } = require('yargs')
    .scriptName('server')
    .usage('Usage: $0 --addr <IP> --port <PORT> --zipkin <ZIPKIN URL>')
    .option('a', { alias: 'addr', type: 'string', describe: 'IP address' })
    .option('p', { alias: 'port', type: 'string', describe: 'Port the server listen to' })
    .option('z', { alias: 'zipkin', type: 'string', describe: 'Zipkin URL (tracing is not built in)' })
    .option('k', { alias: 'key', type: 'string', describe: 'Secret key' })
    .option('default_plaintext', { type: 'string', describe: 'Default plaintext' });
  let addr = '0.0.0.0';
  let port = '50051';
  if ('addr' in argv) { addr = argv.addr; }
  if ('port' in argv) { port = argv.port; }
  if ('key' in argv) { key = argv.key; }
  if ('default_plaintext' in argv) { defaultPlaintext = argv.default_plaintext; }
  return [addr, port];
}

function aesEncrypt(plaintext) {
  const encrypted = CryptoJS.AES.encrypt(plaintext, CryptoJS.enc.Utf8.parse(key), {
    iv: CryptoJS.enc.Utf8.parse(iv),
  });
  return encrypted.ciphertext.toString();
}

function showEncryption(call, callback) {
  process.stdout.write('Received gRPC call.\n');
  let plaintext = call.request.plaintext_message;
  if (plaintext == '' || plaintext == 'world') {
    plaintext = defaultPlaintext;
  }
  const ciphertext = aesEncrypt(plaintext);
  const msg = `fn: AES | plaintext: ${plaintext} ciphertext: ${ciphertext} | runtime: NodeJS`;
  callback(null, { encryption_info: msg });
}

function main() {
  const [addr, port] = parseArgs();
  process.stdout.write('Tracing disabled\n');
  const server = new grpc.Server();
  server.addService(aesProto.Aes.service, { showEncryption: showEncryption });
  const address = `${addr}:${port}`;
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), () => {
    process.stdout.write(`Start AES-nodejs. Listen on ${address}\n`);
    server.start();
  });
}

main();
