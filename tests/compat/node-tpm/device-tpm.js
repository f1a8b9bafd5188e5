// Registers ONE TPM device with the official Node client (azure-iot-provisioning-device 1.9.1 over
// azure-iot-provisioning-device-http, with azure-iot-security-tpm 1.9.3) against a provisiond server,
// its TPM being swtpm behind tests/support/tpm.py's SimulatorAdapter. Prints ONE JSON line for
// tests/compat/test_node_tpm_sdk.py.
//
//   node device-tpm.js
//
// Environment: TEST_CA_PEM, DPS_HTTPS_PORT, ID_SCOPE, TPM_PORT (the adapter), and optionally
// REGISTRATION_ID (without it the client derives the id from the EK) and SIGN (text the TPM signs
// with the identity key once registered, to show the hub key was imported).
//
// Output and exit status:
// With ONLY_KEYS=1 it registers nothing and prints {"endorsementKey", "registrationId"}: what the
// client creates (or finds persisted) in the TPM and derives, for the operator to enroll.
//
//   0  register() resolved: {"registered": true, "registrationId", "endorsementKey", "result",
//        "signature": <base64 HMAC of SIGN by the imported key, or null>}
//   2  register() failed:   {"refused": true, "error": <constructor name>, "message",
//        "httpStatus": <status or null>, "result": <the final operation status, or null>}
//   1  anything else (bad environment, TPM unreachable, crash): {"error", "message"}
// The TPM client throws an uncaught TypeError when its TPM refuses a blob (TPM.md): that is exit 1.
'use strict';

const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const HttpBase = require('azure-iot-http-base').Http;
const { TpmSecurityClient } = require('azure-iot-security-tpm');
const tss = require('tss.js');

function fail(e) {
  const line = { error: (e && e.constructor && e.constructor.name) || 'Error', message: String(e && e.message) };
  console.log(JSON.stringify(line));
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
}
process.on('uncaughtException', fail);

function call(fn) {
  return new Promise((resolve, reject) => fn((err, value) => (err ? reject(err) : resolve(value))));
}

async function main() {
  for (const name of ['DPS_HTTPS_PORT', 'ID_SCOPE', 'TPM_PORT']) {
    if (!process.env[name]) throw new Error(`${name} must be set`);
  }
  const { httpBaseOptions } = require('../node/local-target');
  const tpm = new tss.Tpm(true, '127.0.0.1', Number(process.env.TPM_PORT));
  const security = new TpmSecurityClient(process.env.REGISTRATION_ID || undefined, tpm);
  if (process.env.ONLY_KEYS === '1') {
    const ek = await call((cb) => security.getEndorsementKey(cb));
    const registrationId = await call((cb) => security.getRegistrationId(cb));
    console.log(JSON.stringify({ endorsementKey: ek.toString('base64'), registrationId }));
    process.exit(0);
  }
  const base = new HttpBase();
  base.setOptions(httpBaseOptions(Number(process.env.DPS_HTTPS_PORT)));
  const transport = new Http(base);
  transport.setTransportOptions({ pollingInterval: 200 });
  const client = ProvisioningDeviceClient.create('localhost', process.env.ID_SCOPE, transport, security);
  let result;
  try {
    result = await client.register();
  } catch (e) {
    const response = e.response || e.transportObject;
    const httpStatus = response && typeof response.statusCode === 'number' ? response.statusCode : null;
    console.log(JSON.stringify({
      refused: true,
      error: e.constructor.name,
      message: e.message,
      httpStatus,
      result: e.result && typeof e.result === 'object' ? e.result : null,
    }));
    process.exit(2);
  }
  const registrationId = await call((cb) => security.getRegistrationId(cb));
  const ek = await call((cb) => security.getEndorsementKey(cb));
  let signature = null;
  if (process.env.SIGN) {
    signature = (await call((cb) => security.signWithIdentity(Buffer.from(process.env.SIGN), cb))).toString('base64');
  }
  console.log(JSON.stringify({
    registered: true, registrationId, endorsementKey: ek.toString('base64'), result, signature,
  }));
  process.exit(0);
}

main().catch(fail);
