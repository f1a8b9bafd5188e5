// Smoke test of the official Node zero-touch client (@googleapis/androiddeviceprovisioning 16.0.0)
// against a provisiond server; prints ONE JSON line of observations for
// tests/compat/test_zerotouch_node.py.
//
//   node zerotouch.js <imei-prefix (8 digits)>
//
// Environment: TEST_CA_PEM, DPS_HTTPS_PORT, ZT_TOKEN, ZT_PARTNER.
//
// Built as docs/zerotouch.md shows: auth.OAuth2 holding a static access token (this package has no
// OAuth2Client), rootUrl pointing at the server, an agent trusting the test CA, and retry: false
// (otherwise GETs answered 5xx are silently retried). The client never polls: we loop on
// operations.get until done. Failures provoked on purpose are recorded; any other failure prints
// the error to stderr and exits 1.
'use strict';

const https = require('https');
const { androiddeviceprovisioning, auth } = require('@googleapis/androiddeviceprovisioning');
const { CA } = require('./local-target');

for (const name of ['DPS_HTTPS_PORT', 'ZT_TOKEN', 'ZT_PARTNER']) {
  if (!process.env[name]) throw new Error(`${name} must be set`);
}
const PREFIX = process.argv[2];
const PARTNER = process.env.ZT_PARTNER;
const SECTION = 'SECTION_TYPE_ZERO_TOUCH';

function luhnDigit(body) {
  let total = 0;
  [...body].reverse().forEach((char, position) => {
    const value = Number(char) * (position % 2 === 0 ? 2 : 1);
    total += Math.floor(value / 10) + (value % 10);
  });
  return String((10 - (total % 10)) % 10);
}

function imei(n) {
  const body = `${PREFIX}${String(n).padStart(6, '0')}`;
  return body + luhnDigit(body);
}

function client(token) {
  const oauth = new auth.OAuth2();
  oauth.setCredentials({ access_token: token }); // no expiry, no refresh token: never refreshed
  return androiddeviceprovisioning({
    version: 'v1',
    rootUrl: `https://localhost:${process.env.DPS_HTTPS_PORT}/`,
    auth: oauth,
    agent: new https.Agent({ ca: CA }),
    retry: false,
  });
}

async function failure(promise) {
  try {
    const res = await promise;
    return { status: null, unexpectedlyReturned: res.data };
  } catch (e) {
    return { status: e.status || (e.response && e.response.status) || null, message: e.message, type: e.constructor.name };
  }
}

(async () => {
  const zt = client(process.env.ZT_TOKEN);
  const obs = {};
  const customer = (await zt.partners.customers.create({
    parent: `partners/${PARTNER}`,
    requestBody: { customer: { companyName: `Node ${PREFIX}`, ownerEmails: ['owner@node.example'] } },
  })).data;
  obs.customer = customer;

  const claims = [0, 1, 2].map((n) => ({
    customerId: customer.companyId, sectionType: SECTION,
    deviceIdentifier: { imei: imei(n), manufacturer: 'Google' },
  }));
  claims.push({ customerId: customer.companyId, sectionType: SECTION, deviceIdentifier: { imei: '123', manufacturer: 'Google' } });
  obs.claimsSent = claims;
  const started = (await zt.partners.devices.claimAsync({ partnerId: PARTNER, requestBody: { claims } })).data;
  obs.started = started;
  let current = started;
  let polls = 0;
  const deadline = Date.now() + 60000;
  while (!current.done) {
    if (Date.now() > deadline) throw new Error(`operation ${current.name} not done after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    current = (await zt.operations.get({ name: current.name })).data;
    polls += 1;
  }
  obs.done = current;
  obs.polls = polls;
  obs.listed = (await zt.partners.customers.list({ partnerId: PARTNER })).data;
  obs.unknownOperation = await failure(zt.operations.get({ name: 'operations/apibatchoperation/1' }));
  obs.badToken = await failure(client('not-a-token').partners.customers.list({ partnerId: PARTNER }));
  console.log(JSON.stringify(obs));
})().catch((e) => {
  console.error(e.constructor.name, e.message, e.stack);
  process.exit(1);
});
