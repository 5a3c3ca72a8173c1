// currencyservice: vSwarm's online-shop currency service
// (benchmarks/online-shop/currencyservice/server.js), serving hipstershop.CurrencyService.
//
// Kept as in vSwarm: the rates in data/currency_conversion.json (EUR based, loaded with
// require on every call), conversion through EUR with the same floating-point carry and
// rounding, pino JSON logging (one line per call), the gRPC health service, and the port from
// PORT. Left out: the Cloud profiler, trace and debug agents, which vSwarm-u disables
// (DISABLE_PROFILER, DISABLE_TRACING, DISABLE_DEBUGGER) so they are never loaded.
const path = require('path');
const grpc = require('@grpc/grpc-js');
const pino = require('pino');
const protoLoader = require('@grpc/proto-loader');

console.log('Profiler disabled.');
console.log('Tracing disabled.');
console.log('Debugger disabled.');

const PORT = process.env.PORT;

const logger = pino({
  name: 'currencyservice-server',
  messageKey: 'message',
  changeLevelName: 'severity',
  useLevelLabels: true,
});

function loadProto(file) {
  const packageDefinition = protoLoader.loadSync(file, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(packageDefinition);
}

const shopProto = loadProto(path.join(__dirname, 'proto/demo.proto')).hipstershop;
const healthProto = loadProto(path.join(__dirname, 'proto/grpc/health/v1/health.proto')).grpc.health.v1;

function getCurrencyData(callback) {
  const data = require('./data/currency_conversion.json');
  callback(data);
}

// Moves the fractional part of units into nanos and whole nanos into units.
function carry(amount) {
  const fractionSize = Math.pow(10, 9);
  amount.nanos += (amount.units % 1) * fractionSize;
  amount.units = Math.floor(amount.units) + Math.floor(amount.nanos / fractionSize);
  amount.nanos = amount.nanos % fractionSize;
  return amount;
}

function getSupportedCurrencies(call, callback) {
  logger.info('Getting supported currencies...');
  getCurrencyData((data) => {
    callback(null, { currency_codes: Object.keys(data) });
  });
}

function convert(call, callback) {
  try {
    getCurrencyData((data) => {
      const request = call.request;
      const from = request.from;
      const euros = carry({
        units: from.units / data[from.currency_code],
        nanos: from.nanos / data[from.currency_code],
      });
      euros.nanos = Math.round(euros.nanos);
      const result = carry({
        units: euros.units * data[request.to_code],
        nanos: euros.nanos * data[request.to_code],
      });
      result.units = Math.floor(result.units);
      result.nanos = Math.floor(result.nanos);
      result.currency_code = request.to_code;
      logger.info('conversion request successful');
      callback(null, result);
    });
  } catch (err) {
    logger.error(`conversion request failed: ${err}`);
    callback(err.message);
  }
}

function check(call, callback) {
  callback(null, { status: 'SERVING' });
}

function main() {
  logger.info(`Starting gRPC server on port ${PORT}...`);
  const server = new grpc.Server();
  server.addService(shopProto.CurrencyService.service, { getSupportedCurrencies, convert });
  server.addService(healthProto.Health.service, { check });
  server.bindAsync(`0.0.0.0:${PORT}`, grpc.ServerCredentials.createInsecure(), () => {
    logger.info(`CurrencyService gRPC server started on port ${PORT}`);
    server.start();
  });
}

main();
