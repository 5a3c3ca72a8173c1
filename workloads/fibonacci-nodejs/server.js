// fibonacci-nodejs: vSwarm's fibonacci-nodejs (benchmarks/fibonacci/nodejs/server.js).
//
// As in vSwarm: parseInt of the request (an unparsable one gives NaN, the loop does not run and
// the answer is 0), BigInt arithmetic (no overflow), and a log line per invocation. vSwarm's
// tracing (off unless ENABLE_TRACING is set) is not built in; --zipkin is accepted and ignored.
const process = require('process');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const packageDefinition = protoLoader.loadSync(__dirname + '/proto/fibonacci.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const fibonacciProto = grpc.loadPackageDefinition(packageDefinition).fibonacci;

function fibonacci(num) {
  let num1 = BigInt(0);
  let num2 = BigInt(1);
  let sum = BigInt(0);
  for (let i = 0; i < num; i++) {
    sum = num1 + num2;
    num1 = num2;
    num2 = sum;
  }
  return num1.toString();
}

function parseArgs() {
  const { argv } = require('yargs')
    .scriptName('server')
    .usage('Usage: $0 --addr <IP> --port <PORT> --zipkin <ZIPKIN URL>')
    .option('a', { alias: 'addr', type: 'string', describe: 'IP address' })
    .option('p', { alias: 'port', type: 'string', describe: 'Port the server listen to' })
    .option('z', { alias: 'zipkin', type: 'string', describe: 'Zipkin URL (tracing is not built in)' });
  let addr = '0.0.0.0';
  let port = '50051';
  if ('addr' in argv) { addr = argv.addr; }
  if ('port' in argv) { port = argv.port; }
  return [addr, port];
}

function sayHello(call, callback) {
  process.stdout.write('Received gRPC call.\n');
  const x = parseInt(call.request.name);
  const y = fibonacci(x);
  callback(null, { message: `fn: Fib: y = fib(x) | x: ${x} y: ${y} | runtime: NodeJS` });
}

function main() {
  const [addr, port] = parseArgs();
  process.stdout.write('Tracing disabled\n');
  const server = new grpc.Server();
  server.addService(fibonacciProto.Greeter.service, { sayHello: sayHello });
  const address = `${addr}:${port}`;
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), () => {
    process.stdout.write(`Server started on ${address}\n`);
    server.start();
  });
}

main();
