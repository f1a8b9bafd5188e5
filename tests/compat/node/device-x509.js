// Registers ONE device with azure-iot-provisioning-device 1.9.1 over HTTP (azure-iot-provisioning-device-http)
// and X.509 attestation (azure-iot-security-x509 X509Security, docs/x509.md) against a provisiond
// server, and prints ONE JSON line for tests/compat/test_node_x509_sdk.py.
//
//   node device-x509.js [registrationId [certFile [keyFile]]]
//
// Environment: TEST_CA_PEM, DPS_HTTPS_PORT, ID_SCOPE, and REGISTRATION_ID, DEVICE_CERT_FILE (PEM: the
// device certificate followed by any intermediates) and DEVICE_KEY_FILE (PEM private key); argv wins.
// Optionally PAYLOAD (JSON, handed to setProvisioningPayload).
//
// The X.509 cert and key reach the TLS handshake like this: the transport hands X509Security's
// {cert, key} to RestApiClient as `x509`, azure-iot-http-base's buildRequest copies them into the
// https.request options, and the request's agent (the port-pinning agent of local-target.js) passes
// those options on to tls.connect in createConnection.
//
// Output and exit status (as device-http.js):
//   0  register() resolved:                 {"registered": true, "result": <registrationState>}
//   2  register() was refused by the server: {"refused": true, "error": <constructor name>, "message",
//        "httpStatus": <status of the refusing response or null>, "body": <its parsed body or null>,
//        "result": <the final operation status of a DeviceRegistrationFailedError, or null>}
//   1  anything else (bad environment, connection or TLS failure, crash): {"error", "message"}
'use strict';

const fs = require('fs');
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Http } = require('azure-iot-provisioning-device-http');
const HttpBase = require('azure-iot-http-base').Http;
const { X509Security } = require('azure-iot-security-x509');

function fail(e) {
  const line = { error: (e && e.constructor && e.constructor.name) || 'Error', message: String(e && e.message) };
  console.log(JSON.stringify(line));
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
}

function parseBody(body) {
  if (body === undefined || body === null || body === '') return null;
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) return body;
  try {
    return JSON.parse(body.toString());
  } catch (_) {
    return body.toString();
  }
}

// A rejection the server caused: an HTTP status >= 300 (the error carries the response), or a final
// operation status the SDK refuses (DeviceRegistrationFailedError carries the body as `result`).
function refusal(e) {
  const response = e.response || e.transportObject;
  const httpStatus = response && typeof response.statusCode === 'number' ? response.statusCode : null;
  const result = e.result && typeof e.result === 'object' ? e.result : null;
  if (httpStatus === null && result === null) return null;
  return {
    refused: true,
    error: e.constructor.name,
    message: e.message,
    httpStatus,
    body: parseBody(e.responseBody),
    result,
  };
}

function main() {
  const registrationId = process.argv[2] || process.env.REGISTRATION_ID;
  const certFile = process.argv[3] || process.env.DEVICE_CERT_FILE;
  const keyFile = process.argv[4] || process.env.DEVICE_KEY_FILE;
  const env = {
    DPS_HTTPS_PORT: process.env.DPS_HTTPS_PORT,
    ID_SCOPE: process.env.ID_SCOPE,
    REGISTRATION_ID: registrationId,
    DEVICE_CERT_FILE: certFile,
    DEVICE_KEY_FILE: keyFile,
  };
  for (const [name, value] of Object.entries(env)) {
    if (!value) throw new Error(`${name} must be set`);
  }
  // PEM strings, as a user would hand them to X509Security.
  const cert = fs.readFileSync(certFile, 'utf8');
  const key = fs.readFileSync(keyFile, 'utf8');
  // Loaded here so that a missing TEST_CA_PEM is reported as one JSON error line, like the rest.
  const { httpBaseOptions } = require('./local-target');

  // provisioningHost cannot carry a port (docs/devices.md): the base's agent pins the real one.
  const base = new HttpBase();
  base.setOptions(httpBaseOptions(Number(process.env.DPS_HTTPS_PORT)));
  const transport = new Http(base);
  transport.setTransportOptions({ pollingInterval: 200 }); // only used when the server sends no Retry-After
  const client = ProvisioningDeviceClient.create('localhost', process.env.ID_SCOPE, transport,
    new X509Security(registrationId, { cert, key }));
  if (process.env.PAYLOAD) client.setProvisioningPayload(JSON.parse(process.env.PAYLOAD));

  return client.register().then(
    (result) => console.log(JSON.stringify({ registered: true, result })),
    (e) => {
      const refused = refusal(e);
      if (!refused) throw e;
      console.log(JSON.stringify(refused));
      process.exitCode = 2;
    });
}

try {
  main().catch(fail);
} catch (e) {
  fail(e);
}
