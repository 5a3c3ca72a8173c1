// paymentservice: vSwarm's online-shop payment service
// (benchmarks/online-shop/paymentservice/{index,server,charge}.js), serving
// hipstershop.PaymentService.
//
// Kept as in vSwarm: the card check with simple-card-validator (VISA and MasterCard only, not
// expired against today's date), a uuid v4 transaction id, pino JSON logging of the whole
// request, errors handed to gRPC as the thrown Error (grpc-js then reports UNKNOWN with the
// message), the gRPC health service, and the port from PORT. Left out: the Cloud profiler, trace
// and debug agents, which vSwarm-u disables (DISABLE_PROFILER, DISABLE_TRACING,
// DISABLE_DEBUGGER) so they are never loaded.
'use strict';

const path = require('path');
const grpc = require('@grpc/grpc-js');
const pino = require('pino');
const protoLoader = require('@grpc/proto-loader');
const cardValidator = require('simple-card-validator');
const uuid = require('uuid/v4');

console.log('Profiler disabled.');
console.log('Tracing disabled.');
console.log('Debugger disabled.');

function makeLogger(name) {
  return pino({ name, messageKey: 'message', changeLevelName: 'severity', useLevelLabels: true });
}
const serverLogger = makeLogger('paymentservice-server');
const chargeLogger = makeLogger('paymentservice-charge');

class CreditCardError extends Error {
  constructor(message) {
    super(message);
    this.code = 400; // invalid argument, as vSwarm sets it
  }
}

class InvalidCreditCard extends CreditCardError {
  constructor() {
    super('Credit card info is invalid');
  }
}

class UnacceptedCreditCard extends CreditCardError {
  constructor(cardType) {
    super(`Sorry, we cannot process ${cardType} credit cards. Only VISA or MasterCard is accepted.`);
  }
}

class ExpiredCreditCard extends CreditCardError {
  constructor(number, month, year) {
    super(`Your credit card (ending ${number.substr(-4)}) expired on ${month}/${year}`);
  }
}

// Checks the card and (pretends to) charge it; returns a random transaction id.
function charge(request) {
  const { amount, credit_card: creditCard } = request;
  const cardNumber = creditCard.credit_card_number;
  const { card_type: cardType, valid } = cardValidator(cardNumber).getCardDetails();
  if (!valid) {
    throw new InvalidCreditCard();
  }
  if (!(cardType === 'visa' || cardType === 'mastercard')) {
    throw new UnacceptedCreditCard(cardType);
  }
  const currentMonth = new Date().getMonth() + 1;
  const currentYear = new Date().getFullYear();
  const { credit_card_expiration_year: year, credit_card_expiration_month: month } = creditCard;
  if ((currentYear * 12 + currentMonth) > (year * 12 + month)) {
    throw new ExpiredCreditCard(cardNumber.replace('-', ''), month, year);
  }
  chargeLogger.info(`Transaction processed: ${cardType} ending ${cardNumber.substr(-4)} \
    Amount: ${amount.currency_code}${amount.units}.${amount.nanos}`);
  return { transaction_id: uuid() };
}

function chargeHandler(call, callback) {
  try {
    serverLogger.info(`PaymentService#Charge invoked with request ${JSON.stringify(call.request)}`);
    callback(null, charge(call.request));
  } catch (err) {
    console.warn(err);
    callback(err);
  }
}

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

function main() {
  const port = process.env.PORT;
  const protoRoot = path.join(__dirname, 'proto');
  const shop = loadProto(path.join(protoRoot, 'demo.proto')).hipstershop;
  const health = loadProto(path.join(protoRoot, 'grpc/health/v1/health.proto')).grpc.health.v1;
  const server = new grpc.Server();
  server.addService(shop.PaymentService.service, { charge: chargeHandler });
  server.addService(health.Health.service, { check: (call, callback) => callback(null, { status: 'SERVING' }) });
  server.bindAsync(`0.0.0.0:${port}`, grpc.ServerCredentials.createInsecure(), () => {
    serverLogger.info(`PaymentService gRPC server started on port ${port}`);
    server.start();
  });
}

main();
