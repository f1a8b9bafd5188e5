// Registers ONE device with azure-iot-provisioning-device 1.9.1 over MQTT (azure-iot-provisioning-device-mqtt
// 1.8.1, on an azure-iot-mqtt-base MqttBase that trusts the test CA) against a provisiond server's MQTT
// port (docs/mqtt.md), and prints ONE JSON line for tests/compat/test_node_device_mqtt.py.
//
//   node device-mqtt.js [registrationId [deviceKey]]
//
// Environment: TEST_CA_PEM, DPS_MQTT_PORT, ID_SCOPE, REGISTRATION_ID and DEVICE_KEY (argv wins), and
// optionally PAYLOAD (JSON, handed to setProvisioningPayload). The transport dials
// mqtts://localhost:${DPS_MQTT_PORT}: unlike the HTTP transport, it takes a port in provisioningHost.
//
// Output and exit status:
//   0  register() resolved: {"registered": true, "result": <registrationState>}
//   2  register() was refused by the server: {"refused": true, "error": <constructor name>, "message",
//        "connackCode": <CONNACK return code of a refused CONNECT, or null>,
//        "mqttStatus": <status in the refusing $dps/registrations/res/{status}/ topic, or null>,
//        "topic": <that topic or null>, "result": <the parsed refusing payload, or the final operation
//        status of a DeviceRegistrationFailedError, or null>}
//   1  anything else (bad environment, connection or TLS failure, crash): {"error", "message"}
'use strict';

const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const { Mqtt } = require('azure-iot-provisioning-device-mqtt');
const { MqttBase } = require('azure-iot-mqtt-base');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');

function fail(e) {
  const line = { error: (e && e.constructor && e.constructor.name) || 'Error', message: String(e && e.message) };
  console.log(JSON.stringify(line));
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
}

// The MQTT-level cause of an error: mqtt.js sets `code` (the CONNACK return code) on a refused CONNECT;
// the SDK may wrap it, keeping the original as `transportError` or `innerError`.
function connackCode(e) {
  for (let cur = e, depth = 0; cur && depth < 5; cur = cur.transportError || cur.innerError, depth += 1) {
    if (typeof cur.code === 'number' && cur.code >= 1 && cur.code <= 5) return cur.code;
  }
  return null;
}

// A rejection the server caused: a refused CONNECT (CONNACK code), a response topic with a status
// >= 300 (translateError puts {topic, payload} in transportObject and the payload in result), or a
// final operation status the SDK refuses (DeviceRegistrationFailedError carries it as `result`).
function refusal(e) {
  const code = connackCode(e);
  const transport = e.transportObject && typeof e.transportObject === 'object' ? e.transportObject : null;
  const topic = transport && typeof transport.topic === 'string' ? transport.topic : null;
  const match = topic ? topic.match(/^\$dps\/registrations\/res\/(\d+)\//) : null;
  const result = e.result && typeof e.result === 'object' ? e.result : null;
  if (code === null && topic === null && result === null) return null;
  return {
    refused: true,
    error: e.constructor.name,
    message: e.message,
    connackCode: code,
    mqttStatus: match ? Number(match[1]) : null,
    topic,
    result,
  };
}

function main() {
  const registrationId = process.argv[2] || process.env.REGISTRATION_ID;
  const deviceKey = process.argv[3] || process.env.DEVICE_KEY;
  const env = {
    DPS_MQTT_PORT: process.env.DPS_MQTT_PORT,
    ID_SCOPE: process.env.ID_SCOPE,
    REGISTRATION_ID: registrationId,
    DEVICE_KEY: deviceKey,
  };
  for (const [name, value] of Object.entries(env)) {
    if (!value) throw new Error(`${name} must be set`);
  }
  // Loaded here so that a missing TEST_CA_PEM is reported as one JSON error line, like the rest.
  const { CA } = require('./local-target');

  const base = new MqttBase();
  base.setOptions({ ca: CA }); // rejectUnauthorized stays true
  const transport = new Mqtt(base);
  transport.setTransportOptions({ pollingInterval: 200 }); // only used when the server sends no retry-after
  const client = ProvisioningDeviceClient.create(`localhost:${process.env.DPS_MQTT_PORT}`, process.env.ID_SCOPE,
    transport, new SymmetricKeySecurityClient(registrationId, deviceKey));
  if (process.env.PAYLOAD) client.setProvisioningPayload(JSON.parse(process.env.PAYLOAD));

  return client.register().then(
    (result) => {
      console.log(JSON.stringify({ registered: true, result }));
      process.exit(0); // do not wait for the MQTT socket to wind down
    },
    (e) => {
      const refused = refusal(e);
      if (!refused) throw e;
      console.log(JSON.stringify(refused));
      console.error(e && e.stack ? e.stack : e);
      process.exit(2);
    });
}

try {
  main().catch(fail);
} catch (e) {
  fail(e);
}
