// Reaching a provisiond server on 127.0.0.1:<port> with the official Node SDKs, for the compat tests.
//
// The port and CA handling is the shipped helper's (examples/provisiond_sdk.js, which
// docs/quickstart.md documents); this file only binds it to the test CA, which the tests pass in
// TEST_CA_PEM (tests/compat/support.py compat_env). The CA is passed in code: NODE_EXTRA_CA_CERTS is
// read only at process start, and a preset value may name the system bundle instead of our CA.
'use strict';

const fs = require('fs');
const sdk = require('../../../examples/provisiond_sdk');

if (!process.env.TEST_CA_PEM) {
  throw new Error('TEST_CA_PEM must name the test CA certificate (PEM file)');
}
const CA = fs.readFileSync(process.env.TEST_CA_PEM);

// The shape accepted by azure-iot-http-base setOptions() (and RestApiClient.setOptions()).
function httpBaseOptions(port) {
  return sdk.httpBaseOptions(port, CA);
}

module.exports = { CA, httpBaseOptions };
