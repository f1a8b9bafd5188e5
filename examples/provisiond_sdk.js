// The official Azure Node SDKs against provisiond: the two things they cannot be told.
//
// * Ports. The service SDK (azure-iot-provisioning-service) and the device SDK over HTTP
//   (azure-iot-provisioning-device-http) put the host name into the URL as it is and always dial
//   443: a port in HostName / provisioningHost fails (`getaddrinfo ENOTFOUND localhost:8443`).
//   Keep the port out of the host name and give the SDK an https.Agent that dials the real port:
//   httpBaseOptions(port, caFile). (The device SDK over MQTT, azure-iot-provisioning-device-mqtt,
//   takes `localhost:8883` as provisioningHost and needs only the CA: mqttBaseOptions(caFile).)
// * The development CA: passed in code (the `ca` option), since NODE_EXTRA_CA_CERTS is read only
//   when the process starts.
//
// No dependencies beyond Node itself, so a script anywhere can require it by path:
//   const { serviceConnectionString, httpBaseOptions } = require('./examples/provisiond_sdk');
// docs/quickstart.md shows both SDKs with it.
'use strict';

const fs = require('fs');
const https = require('https');

// An https.Agent that rewrites the destination port of every connection it opens.
class PinnedPortAgent extends https.Agent {
  constructor(port, options) {
    super(options);
    this.pinnedPort = port;
  }

  createConnection(options, callback) {
    return super.createConnection({ ...options, port: this.pinnedPort }, callback);
  }
}

function readCa(caFile) {
  return Buffer.isBuffer(caFile) ? caFile : fs.readFileSync(caFile);
}

// Options for azure-iot-http-base's Http.setOptions() and the service SDK's
// client._restApiClient.setOptions(): trust caFile (a path or the PEM as a Buffer) and, unless
// port is 443, dial port.
function httpBaseOptions(port, caFile) {
  const ca = readCa(caFile);
  const options = { ca };
  if (Number(port) !== 443) options.http = { agent: new PinnedPortAgent(Number(port), { ca }) };
  return options;
}

// Options for azure-iot-mqtt-base's MqttBase.setOptions(): trust caFile.
function mqttBaseOptions(caFile) {
  return { ca: readCa(caFile) };
}

// The connection string `provisiond init --json` prints, with the port taken out of HostName,
// and that port (443 when there was none).
function serviceConnectionString(connectionString) {
  const match = /(^|;)HostName=([^;:]+)(?::(\d+))?(;|$)/.exec(connectionString);
  if (!match) throw new Error('the connection string has no HostName');
  const port = match[3] ? Number(match[3]) : 443;
  return {
    connectionString: connectionString.replace(match[0], `${match[1]}HostName=${match[2]}${match[4]}`),
    port,
  };
}

module.exports = { PinnedPortAgent, httpBaseOptions, mqttBaseOptions, serviceConnectionString };
