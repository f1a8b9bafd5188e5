// Reaching a provisiond server on 127.0.0.1:<port> with the official Node SDKs (docs/devices.md).
//
// The test CA comes from TEST_CA_PEM and is passed in code: NODE_EXTRA_CA_CERTS is read only at
// process start, and a preset value may name the system bundle instead of our CA.
'use strict';

const fs = require('fs');
const https = require('https');

if (!process.env.TEST_CA_PEM) {
  throw new Error('TEST_CA_PEM must name the test CA certificate (PEM file)');
}
const CA = fs.readFileSync(process.env.TEST_CA_PEM);

// azure-iot-http-base uses the host string as-is and never reads a port from it,
// so this agent rewrites the destination port of every connection it opens.
class PinnedPortAgent extends https.Agent {
  constructor(port, options) {
    super(options);
    this.pinnedPort = port;
  }

  createConnection(options, callback) {
    return super.createConnection({ ...options, port: this.pinnedPort }, callback);
  }
}

// The shape accepted by azure-iot-http-base setOptions() (and RestApiClient.setOptions()).
function httpBaseOptions(port) {
  const options = { ca: CA };
  if (port !== 443) options.http = { agent: new PinnedPortAgent(port, { ca: CA }) };
  return options;
}

module.exports = { CA, PinnedPortAgent, httpBaseOptions };
