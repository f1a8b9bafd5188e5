"""The DPS service API's OpenAPI document: request bodies from the models the routes validate
with (``schemas``), answers from the structs in ``answers``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from provisiond.api.dps_openapi import (
    API_VERSION_PARAM,
    ERROR,
    ErrorDetails,
    dps_errors,
    sas_scheme,
)
from provisiond.api.dps_service.answers import (
    AttestationMechanism,
    BulkEnrollmentGroupOperationResult,
    BulkEnrollmentOperationResult,
    EnrollmentGroup,
    IndividualEnrollment,
)
from provisiond.api.dps_service.schemas import BulkIn, EnrollmentGroupIn, IndividualEnrollmentIn, QueryIn
from provisiond.api.dps_wire import ISSUANCE_API_VERSION
from provisiond.api.openapi import (
    DialectDocument,
    Operation,
    Schema,
    header_param,
    json_content,
    msgspec_components,
    path_param,
    pydantic_components,
    ref,
)
from provisiond.domain.registration_ids import ID_PATTERN, MAX_ID_LENGTH
from provisiond.services.enrollments import MAX_BULK_ITEMS

__all__ = ["DOCUMENT", "ID_SCHEMA", "SYMMETRIC_KEY_PATTERN"]

ID_SCHEMA: Schema = {"type": "string", "pattern": ID_PATTERN, "maxLength": MAX_ID_LENGTH}

# Base64 (padded) of 16 to 64 bytes, the keys ``domain.enrollments`` accepts: 18-63 bytes in whole
# groups, 16-62 bytes with a padded tail, or 63 bytes and one more (64).
_B64 = "[A-Za-z0-9+/]"
_TAIL = f"(?:{_B64}{{2}}==|{_B64}{{3}}=)"
SYMMETRIC_KEY_PATTERN = (
    f"^(?:(?:{_B64}{{4}}){{6,21}}|(?:{_B64}{{4}}){{5,20}}{_TAIL}|(?:{_B64}{{4}}){{21}}{_B64}{{2}}==)$"
)


_PAGING = (
    header_param("x-ms-continuation", "The continuation token of the page before."),
    header_param("x-ms-max-item-count", "Items per page (at most 100).", {"type": "integer", "minimum": 1}),
)
_PAGE_HEADERS = {
    "x-ms-continuation": {"description": "Present when more items follow.", "schema": {"type": "string"}},
    "x-ms-item-type": {"description": "What the items are.", "schema": {"type": "string"}},
}
_IF_MATCH = header_param("If-Match", "The etag the resource must have; absent: unconditionally.")


def _page(item: str, description: str) -> dict[str, Any]:
    return {**json_content({"type": "array", "items": ref(item)}, description), "headers": _PAGE_HEADERS}


def _body(name: str, description: str) -> dict[str, Any]:
    return {"required": True, **json_content(ref(name), description)}


def _enrollment_operations(
    collection: str, model: str, input_model: str, id_name: str, noun: str, bulk_result: str
) -> Iterator[Operation]:
    item = f"/{collection}/{{{id_name}}}"
    id_param = path_param(id_name, f"The {noun}'s id (case-insensitive).", ID_SCHEMA)
    tags = (collection,)
    yield Operation(
        "GET",
        item,
        f"{model}_Get",
        f"Get a {noun}.",
        {"200": json_content(ref(model), f"The {noun}."), **dps_errors(400, 401, 404, 503)},
        (id_param, API_VERSION_PARAM),
        tags=tags,
    )
    yield Operation(
        "PUT",
        item,
        f"{model}_CreateOrUpdate",
        f"Create or replace a {noun}.",
        {
            "200": json_content(ref(model), f"The {noun} as stored, with its new etag."),
            **dps_errors(400, 401, 404, 409, 412, 413, 415, 503),
        },
        (id_param, API_VERSION_PARAM, _IF_MATCH),
        _body(input_model, f"The {noun}; the id in the path wins when the body leaves it out."),
        description=(
            f"`credentialPolicyName` is read only with api-version {ISSUANCE_API_VERSION}. "
            "With If-Match, the resource must exist (404 if not) and carry that etag (412 if not)."
        ),
        tags=tags,
    )
    yield Operation(
        "DELETE",
        item,
        f"{model}_Delete",
        f"Delete a {noun}.",
        {"204": {"description": "Deleted."}, **dps_errors(400, 401, 404, 412, 503)},
        (id_param, API_VERSION_PARAM, _IF_MATCH),
        tags=tags,
    )
    yield Operation(
        "POST",
        f"/{collection}",
        f"{model}_RunBulkOperation",
        f"Create, update or delete up to {MAX_BULK_ITEMS} {noun}s.",
        {
            "200": json_content(ref(bulk_result), "Which items failed, and why (each by its id)."),
            **dps_errors(400, 401, 413, 415, 503),
        },
        (API_VERSION_PARAM,),
        _body(f"BulkIn{collection[:1].upper()}{collection[1:]}", "The mode and the items."),
        tags=tags,
    )
    yield Operation(
        "POST",
        f"/{collection}/query",
        f"{model}_Query",
        f"A page of {noun}s.",
        {"200": _page(model, f"The {noun}s of the page."), **dps_errors(400, 401, 413, 415, 503)},
        (API_VERSION_PARAM, *_PAGING),
        _body("QuerySpecification", f"The query; DPS takes only SELECT * (over {collection})."),
        tags=tags,
    )
    yield Operation(
        "POST",
        f"{item}/attestationmechanism",
        f"{model}_GetAttestationMechanism",
        f"The {noun}'s attestation, keys included.",
        {
            "200": json_content(ref("AttestationMechanism"), "The attestation."),
            **dps_errors(400, 401, 404, 503),
        },
        (id_param, API_VERSION_PARAM),
        tags=tags,
    )


def _operations() -> Iterator[Operation]:
    yield from _enrollment_operations(
        "enrollments",
        "IndividualEnrollment",
        "IndividualEnrollmentIn",
        "id",
        "individual enrollment",
        "BulkEnrollmentOperationResult",
    )
    yield from _enrollment_operations(
        "enrollmentGroups",
        "EnrollmentGroup",
        "EnrollmentGroupIn",
        "id",
        "enrollment group",
        "BulkEnrollmentGroupOperationResult",
    )
    rid = path_param("id", "The registration id (case-insensitive).", ID_SCHEMA)
    tags = ("registrations",)
    yield Operation(
        "GET",
        "/registrations/{id}",
        "DeviceRegistrationState_Get",
        "A device's registration state.",
        {"200": json_content(ref("DeviceRegistrationState"), "The state."), **dps_errors(400, 401, 404, 503)},
        (rid, API_VERSION_PARAM),
        tags=tags,
    )
    yield Operation(
        "DELETE",
        "/registrations/{id}",
        "DeviceRegistrationState_Delete",
        "Forget a device's registration state.",
        {"204": {"description": "Deleted."}, **dps_errors(400, 401, 404, 412, 503)},
        (rid, API_VERSION_PARAM, _IF_MATCH),
        tags=tags,
    )
    yield Operation(
        "POST",
        "/registrations/{id}/query",
        "DeviceRegistrationState_Query",
        "A page of the registration states of an enrollment group's devices.",
        {
            "200": _page("DeviceRegistrationState", "The states of the page."),
            **dps_errors(400, 401, 413, 415, 503),
        },
        (path_param("id", "The enrollment group's id.", ID_SCHEMA), API_VERSION_PARAM, *_PAGING),
        {
            "required": False,
            **json_content({"type": "object"}, "A QuerySpecification; only its shape is read."),
        },
        tags=tags,
    )


def _bulk_input(collection: str, item: str) -> Schema:
    schema = BulkIn.model_json_schema(ref_template="#/components/schemas/{model}")
    props = dict(schema["properties"])
    for other in ("enrollments", "enrollmentGroups"):
        props.pop(other)
    props[collection] = {"type": "array", "items": ref(item), "maxItems": MAX_BULK_ITEMS}
    return {
        "type": "object",
        "title": "BulkEnrollmentOperation",
        "properties": props,
        "required": ["mode", collection],
    }


def _refine(components: dict[str, Schema]) -> None:
    """What the models leave to the domain, which the description must still say: the id rules
    and the keys' form (checked in ``domain.registration_ids`` and ``domain.enrollments``)."""
    for model, id_name in (
        ("IndividualEnrollmentIn", "registrationId"),
        ("EnrollmentGroupIn", "enrollmentGroupId"),
    ):
        components[model]["properties"][id_name] = {**ID_SCHEMA, "description": "Case-insensitive."}
    key = {
        "anyOf": [{"type": "string", "pattern": SYMMETRIC_KEY_PATTERN}, {"type": "null"}],
        "description": "Base64 of 16 to 64 bytes; left out (or empty), the service makes one.",
    }
    twin = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "tags": {"type": "object"},
                    "properties": {"type": "object", "properties": {"desired": {"type": "object"}}},
                },
            },
            {"type": "null"},
        ],
        "description": "The device's twin at its hub: tags and desired properties.",
    }
    for model in ("IndividualEnrollmentIn", "EnrollmentGroupIn"):
        components[model]["properties"]["initialTwin"] = twin
    keys = components["SymmetricKeyIn"]["properties"]
    keys["primaryKey"] = keys["secondaryKey"] = key
    for schema in components.values():
        for prop in schema.get("properties", {}).values():
            prop.pop("title", None)  # pydantic's titles repeat the field name, capitalised


def _components() -> dict[str, Schema]:
    components = pydantic_components([IndividualEnrollmentIn, EnrollmentGroupIn])
    _refine(components)
    query = QueryIn.model_json_schema()
    components["QuerySpecification"] = {**query, "title": "QuerySpecification"}
    components["BulkInEnrollments"] = _bulk_input("enrollments", "IndividualEnrollmentIn")
    components["BulkInEnrollmentGroups"] = _bulk_input("enrollmentGroups", "EnrollmentGroupIn")
    components.update(
        msgspec_components(
            [
                IndividualEnrollment,
                EnrollmentGroup,
                BulkEnrollmentOperationResult,
                BulkEnrollmentGroupOperationResult,
                AttestationMechanism,
            ]
        )
    )
    components[ERROR] = msgspec_components([ErrorDetails])["ErrorDetails"]
    return components


DOCUMENT = DialectDocument(
    name="dps-service",
    title="provisiond: Azure IoT Hub Device Provisioning Service, service API",
    api_version="2021-10-01",
    description=(
        "Enrollments, enrollment groups and registration states, as Azure DPS's service API "
        f"(2021-10-01, and {ISSUANCE_API_VERSION} for certificate issuance). Every call needs a "
        "SharedAccessSignature signed with a shared access policy that has the operation's right."
    ),
    operations=_operations,
    components=_components,
    security_schemes={
        "sas": sas_scheme(
            "SharedAccessSignature sr={host}&sig={signature}&se={expiry}&skn={policy}, signed with a "
            "policy key (provisiond dps policy)."
        )
    },
)
