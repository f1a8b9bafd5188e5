// Drives every call of azure-iot-provisioning-service 1.11.2's ProvisioningServiceClient against a
// provisiond server and prints ONE JSON line of observations for tests/compat/test_node_service_sdk.py.
//
//   node service-client.js <scenario>
//
// Scenarios: individual | group | bulk | query-individual | query-group | registrations | auth
//
// Environment: TEST_CA_PEM, DPS_HTTPS_PORT, DPS_KEY (owner policy key), ID_PREFIX (unique per run),
// DEV_KEY (a base64 symmetric key for the enrollments).
//
// Failures the scenario provokes on purpose are recorded as observations; any other failure prints
// the error to stderr and exits 1. SDK bugs of 1.11.2 worked around: runBulkEnrollmentOperation
// only settles in callback form; Query.next() must be handed the continuation token explicitly.
'use strict';

const { ProvisioningServiceClient } = require('azure-iot-provisioning-service');
const { httpBaseOptions } = require('./local-target');

const PORT = Number(process.env.DPS_HTTPS_PORT);
const PREFIX = process.env.ID_PREFIX;
const DEV_KEY = process.env.DEV_KEY;
const MAX_PAGES = 500; // guard: a server that ignores the continuation token would loop forever

for (const name of ['DPS_HTTPS_PORT', 'DPS_KEY', 'ID_PREFIX', 'DEV_KEY']) {
  if (!process.env[name]) throw new Error(`${name} must be set`);
}

function makeClient(key) {
  // No port in HostName: the SDK cannot take one (ENOTFOUND host:port); the agent pins the real port.
  const client = ProvisioningServiceClient.fromConnectionString(
    `HostName=localhost;SharedAccessKeyName=provisioningserviceowner;SharedAccessKey=${key}`);
  client._restApiClient.setOptions(httpBaseOptions(PORT)); // private API: keep the SDK pinned
  return client;
}

const client = makeClient(process.env.DPS_KEY);

function symmetricKey(key = DEV_KEY) {
  return { type: 'symmetricKey', symmetricKey: { primaryKey: key, secondaryKey: key } };
}

function individual(registrationId, extra = {}) {
  return { registrationId, attestation: symmetricKey(), ...extra };
}

function group(enrollmentGroupId, extra = {}) {
  return { enrollmentGroupId, attestation: symmetricKey(), ...extra };
}

// What a successful call returned: status, content type and the parsed body.
function ok(result) {
  const res = result.httpResponse;
  return { status: res.statusCode, contentType: res.headers['content-type'] || null, body: result.responseBody };
}

function parseBody(text) {
  if (typeof text !== 'string') return text === undefined ? null : text;
  try {
    return JSON.parse(text);
  } catch (_) {
    return text;
  }
}

// The observable parts of an error the SDK raised for an HTTP status >= 300.
function httpError(e) {
  return {
    name: e.constructor.name,
    message: e.message,
    status: e.response.statusCode,
    contentType: e.response.headers['content-type'] || null,
    errorCodeHeader: e.response.headers['x-ms-error-code'] || null,
    body: parseBody(e.responseBody),
  };
}

// A call that should fail with an HTTP error: record how it failed (or that it did not).
// Errors without an HTTP response (connection, TLS) are unexpected and propagate.
async function failure(promise) {
  try {
    const result = await promise;
    return { rejected: false, result: result && result.httpResponse ? ok(result) : null };
  } catch (e) {
    if (!e || !e.response) throw e;
    return { rejected: true, ...httpError(e) };
  }
}

// A delete: resolves to nothing on success.
async function deleted(promise) {
  await promise;
  return { deleted: true };
}

function bulk(operation) {
  // Callback form only: the promise form never settles in 1.11.2.
  return new Promise((resolve, reject) => {
    client.runBulkEnrollmentOperation(operation, (err, body, response) => {
      if (err) reject(err);
      else resolve({ status: response.statusCode, contentType: response.headers['content-type'] || null, body });
    });
  });
}

// Pages through a query with page size `size`, handing the token back explicitly: without it,
// Query.next() asks for the first page again.
async function pages(query, ids) {
  const seen = [];
  let guardHit = false;
  do {
    if (seen.length >= MAX_PAGES) {
      guardHit = true;
      break;
    }
    const { responseBody, httpResponse } = await query.next(query.continuationToken);
    seen.push({
      status: httpResponse.statusCode,
      itemType: httpResponse.headers['x-ms-item-type'] || null,
      continuation: httpResponse.headers['x-ms-continuation'] !== undefined,
      isArray: Array.isArray(responseBody),
      ids: Array.isArray(responseBody) ? responseBody.map(ids) : null,
    });
  } while (query.hasMoreResults);
  return { pages: seen, guardHit, hasMoreResults: query.hasMoreResults };
}

const scenarios = {
  // Individual enrollments: PUT, GET, etag-guarded update and delete, attestation mechanism.
  async individual() {
    const id = `${PREFIX}-ind-1`;
    const id2 = `${PREFIX}:ind.2`; // ':' goes out percent-encoded (encodeURIComponent)
    const id3 = `${PREFIX}-ind-3`;
    const unknown = `${PREFIX}-never-created`;
    const out = {};

    out.create = ok(await client.createOrUpdateIndividualEnrollment(individual(id, {
      provisioningStatus: 'enabled',
      initialTwin: { tags: { site: 'a' }, properties: { desired: { interval: 5 } } },
    })));
    const got = await client.getIndividualEnrollment(id);
    out.get = ok(got);
    out.getUpperCase = ok(await client.getIndividualEnrollment(id.toUpperCase()));

    // Write back what was read (read-only fields included), changed, with its etag (-> If-Match).
    const current = got.responseBody;
    out.update = ok(await client.createOrUpdateIndividualEnrollment({
      ...current, provisioningStatus: 'disabled', initialTwin: { tags: { site: 'b' } },
    }));
    out.getAfterUpdate = ok(await client.getIndividualEnrollment(id));
    // The etag read before the update is stale now.
    out.staleUpdate = await failure(client.createOrUpdateIndividualEnrollment({ ...current, provisioningStatus: 'enabled' }));
    out.staleDeleteByObject = await failure(client.deleteIndividualEnrollment(current));
    out.getAfterStale = ok(await client.getIndividualEnrollment(id));

    out.attestation = ok(await client.getIndividualEnrollmentAttestationMechanism(id));

    out.deleteByObject = await deleted(client.deleteIndividualEnrollment(out.getAfterStale.body));
    out.getAfterDeleteByObject = await failure(client.getIndividualEnrollment(id));

    out.createEncoded = ok(await client.createOrUpdateIndividualEnrollment(individual(id2)));
    out.getEncoded = ok(await client.getIndividualEnrollment(id2));
    out.deleteById = await deleted(client.deleteIndividualEnrollment(id2));
    out.getAfterDeleteById = await failure(client.getIndividualEnrollment(id2));

    const third = ok(await client.createOrUpdateIndividualEnrollment(individual(id3)));
    out.deleteByIdStaleEtag = await failure(client.deleteIndividualEnrollment(id3, '"not-the-etag"'));
    out.deleteByIdWithEtag = await deleted(client.deleteIndividualEnrollment(id3, third.body.etag));
    out.getAfterDeleteByIdWithEtag = await failure(client.getIndividualEnrollment(id3));

    out.getUnknown = await failure(client.getIndividualEnrollment(unknown));
    out.deleteUnknown = await failure(client.deleteIndividualEnrollment(unknown));
    out.attestationUnknown = await failure(client.getIndividualEnrollmentAttestationMechanism(unknown));
    out.ids = { id, id2, id3, unknown };
    return out;
  },

  // Enrollment groups: the same life cycle on /enrollmentGroups (Node writes `enrollmentgroups`
  // in the attestation mechanism path).
  async group() {
    const id = `${PREFIX}-grp-1`;
    const id2 = `${PREFIX}-grp-2`;
    const unknown = `${PREFIX}-grp-never-created`;
    const out = {};

    out.create = ok(await client.createOrUpdateEnrollmentGroup(group(id, {
      provisioningStatus: 'enabled',
      initialTwin: { tags: { fleet: 'a' } },
    })));
    const got = await client.getEnrollmentGroup(id);
    out.get = ok(got);
    out.getUpperCase = ok(await client.getEnrollmentGroup(id.toUpperCase()));

    const current = got.responseBody;
    out.update = ok(await client.createOrUpdateEnrollmentGroup({ ...current, provisioningStatus: 'disabled' }));
    out.getAfterUpdate = ok(await client.getEnrollmentGroup(id));
    out.staleUpdate = await failure(client.createOrUpdateEnrollmentGroup({ ...current, provisioningStatus: 'enabled' }));
    out.staleDeleteByObject = await failure(client.deleteEnrollmentGroup(current));
    out.getAfterStale = ok(await client.getEnrollmentGroup(id));

    out.attestation = ok(await client.getEnrollmentGroupAttestationMechanism(id));

    out.deleteByObject = await deleted(client.deleteEnrollmentGroup(out.getAfterStale.body));
    out.getAfterDeleteByObject = await failure(client.getEnrollmentGroup(id));

    out.create2 = ok(await client.createOrUpdateEnrollmentGroup(group(id2)));
    out.deleteById = await deleted(client.deleteEnrollmentGroup(id2));
    out.getAfterDeleteById = await failure(client.getEnrollmentGroup(id2));

    out.getUnknown = await failure(client.getEnrollmentGroup(unknown));
    out.deleteUnknown = await failure(client.deleteEnrollmentGroup(unknown));
    out.attestationUnknown = await failure(client.getEnrollmentGroupAttestationMechanism(unknown));
    out.ids = { id, id2, unknown };
    return out;
  },

  // runBulkEnrollmentOperation: create / update / delete, a per-item failure, an oversized batch.
  async bulk() {
    const existing = `${PREFIX}-bulk-existing`;
    const a = `${PREFIX}-bulk-a`;
    const b = `${PREFIX}-bulk-b`;
    const c = `${PREFIX}-bulk-c`;
    const out = {};

    ok(await client.createOrUpdateIndividualEnrollment(individual(existing)));
    out.create = await bulk({ mode: 'create', enrollments: [individual(a), individual(b)] });
    out.getCreatedA = ok(await client.getIndividualEnrollment(a));
    out.getCreatedB = ok(await client.getIndividualEnrollment(b));

    out.createWithExisting = await bulk({ mode: 'create', enrollments: [individual(c), individual(existing)] });
    out.getExistingAfterFailedCreate = ok(await client.getIndividualEnrollment(existing));

    out.update = await bulk({
      mode: 'update',
      enrollments: [individual(a, { provisioningStatus: 'disabled' }), individual(b, { provisioningStatus: 'disabled' })],
    });
    out.getUpdatedA = ok(await client.getIndividualEnrollment(a));
    out.getUpdatedB = ok(await client.getIndividualEnrollment(b));

    out.delete = await bulk({ mode: 'delete', enrollments: [individual(a), individual(b)] });
    out.getDeletedA = await failure(client.getIndividualEnrollment(a));
    out.getDeletedB = await failure(client.getIndividualEnrollment(b));

    const eleven = Array.from({ length: 11 }, (_, i) => individual(`${PREFIX}-bulk-big-${i}`));
    out.tooMany = await failure(bulk({ mode: 'create', enrollments: eleven }));
    out.getFirstOfTooMany = await failure(client.getIndividualEnrollment(eleven[0].registrationId));
    out.ids = { existing, a, b, c, firstOfTooMany: eleven[0].registrationId };
    return out;
  },

  // createIndividualEnrollmentQuery paged with page size 3 over 7 (or more) enrollments.
  async 'query-individual'() {
    const mine = Array.from({ length: 7 }, (_, i) => `${PREFIX}-q-${i + 1}`);
    for (const id of mine) ok(await client.createOrUpdateIndividualEnrollment(individual(id)));
    const query = client.createIndividualEnrollmentQuery({ query: 'SELECT * FROM enrollments' }, 3);
    return { mine, ...(await pages(query, (e) => e.registrationId)) };
  },

  // createEnrollmentGroupQuery paged with page size 3 over 7 (or more) groups.
  async 'query-group'() {
    const mine = Array.from({ length: 7 }, (_, i) => `${PREFIX}-gq-${i + 1}`);
    for (const id of mine) ok(await client.createOrUpdateEnrollmentGroup(group(id)));
    const query = client.createEnrollmentGroupQuery({ query: 'SELECT * FROM enrollmentGroups' }, 3);
    return { mine, ...(await pages(query, (e) => e.enrollmentGroupId)) };
  },

  // Registration states: get / delete of unknown ids, and the per-group registration query.
  async registrations() {
    const unknown = `${PREFIX}-reg-unknown`;
    const groupId = `${PREFIX}-reg-grp`;
    const out = {};
    out.getUnknown = await failure(client.getDeviceRegistrationState(unknown));
    out.deleteUnknownById = await failure(client.deleteDeviceRegistrationState(unknown));
    out.deleteUnknownByObject = await failure(
      client.deleteDeviceRegistrationState({ registrationId: unknown, etag: '"abc"' }));
    ok(await client.createOrUpdateEnrollmentGroup(group(groupId)));
    const query = client.createEnrollmentGroupDeviceRegistrationStateQuery({ query: '*' }, groupId, 5);
    out.groupQuery = await pages(query, (s) => s.registrationId);
    out.ids = { unknown, groupId };
    return out;
  },

  // A token signed with a key the server does not hold is refused.
  async auth() {
    const forged = makeClient(Buffer.from('not the key of any policy, 32 b').toString('base64'));
    return { wrongKey: await failure(forged.getIndividualEnrollment(`${PREFIX}-auth`)) };
  },
};

const name = process.argv[2];
if (!Object.prototype.hasOwnProperty.call(scenarios, name)) {
  console.error(`usage: node service-client.js <${Object.keys(scenarios).join('|')}>`);
  process.exit(2);
}
scenarios[name]()
  .then((observations) => console.log(JSON.stringify({ scenario: name, ...observations })))
  .catch((e) => {
    const detail = e && e.response ? JSON.stringify(httpError(e)) : (e && e.stack) || String(e);
    console.error(`${name}: unexpected ${e && e.constructor ? e.constructor.name : 'error'}: ${detail}`);
    process.exit(1);
  });
