// auth-nodejs: vSwarm's auth-nodejs (benchmarks/auth/nodejs/server.js): a fake AWS API Gateway
// authorizer.
//
// As in vSwarm: the token must equal 'allow', 'deny' or 'unauthorized' exactly; the policy is
// JSON.stringify'd with two-space indentation; any other token answers "Error: Invalid token".
// vSwarm's tracing (off unless ENABLE_TRACING is set) is not built in.
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const packageDefinition = protoLoader.loadSync(__dirname + '/proto/auth.proto', {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
});
const authProto = grpc.loadPackageDefinition(packageDefinition).auth;

const FAKE_METHOD_ARN =
  'arn:aws:execute-api:{regionId}:{accountId}:{apiId}/{stage}/{httpVerb}/[{resource}/[{child-resources}]]';

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

function generatePolicy(principalId, effect, resource) {
  const authResponse = {};
  authResponse.principalId = principalId;
  if (effect && resource) {
    const policyDocument = {};
    policyDocument.Version = '2012-10-17';
    policyDocument.Statement = [];
    const statementOne = {};
    statementOne.Action = 'execute-api:Invoke';
    statementOne.Effect = effect;
    statementOne.Resource = resource;
    policyDocument.Statement[0] = statementOne;
    authResponse.policyDocument = policyDocument;
  }
  authResponse.context = { stringKey: 'stringval', numberKey: 123, booleanKey: true };
  return authResponse;
}

function sayHello(call, callback) {
  const token = call.request.name;
  let resp;
  switch (token) {
    case 'allow':
      resp = JSON.stringify(generatePolicy('user', 'Allow', FAKE_METHOD_ARN), null, 2);
      break;
    case 'deny':
      resp = JSON.stringify(generatePolicy('user', 'Deny', FAKE_METHOD_ARN), null, 2);
      break;
    case 'unauthorized':
      resp = 'Unauthorized';
      break;
    default:
      resp = 'Error: Invalid token';
  }
  callback(null, { message: `fn: Auth | token: ${token} | resp: ${resp} | runtime: nodejs` });
}

function main() {
  const [addr, port] = parseArgs();
  process.stdout.write('Tracing disabled\n');
  const server = new grpc.Server();
  server.addService(authProto.Greeter.service, { sayHello: sayHello });
  const address = `${addr}:${port}`;
  server.bindAsync(address, grpc.ServerCredentials.createInsecure(), () => {
    process.stdout.write(`Start Auth-nodejs. Listen on ${address}\n`);
    server.start();
  });
}

main();
