"""Table definitions. Migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text, Uuid

from provisiond.store.types import UtcDateTime

__all__ = [
    "audit_entries",
    "claims",
    "credential_policies",
    "customers",
    "device_keys",
    "devices",
    "dps_ca_certificates",
    "dps_hubs",
    "dps_instance",
    "dps_policies",
    "dps_regions",
    "enrollments",
    "event_outbox",
    "event_subscriptions",
    "issued_certificates",
    "metadata",
    "operation_items",
    "operation_results",
    "operations",
    "outer_key_check",
    "partners",
    "registration_operations",
    "registration_states",
    "sphere_devices",
    "sphere_operations",
    "tenants",
    "tpm_keys",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row: the DPS instance of this data dir.
dps_instance = Table(
    "dps_instance",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("id_scope", String(32), nullable=False),
    Column("service_host", String(255), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("allocation_policy", String(16), nullable=False, server_default="hashed"),
)

# ``sealed_keys``: the primary and secondary key, sealed (store/keyring.py) under the key ``sealed_with``.
dps_policies = Table(
    "dps_policies",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("rights", String(255), nullable=False),
    Column("sealed_keys", Text, nullable=False),
    Column("sealed_with", String(32), nullable=False),
)

# One value sealed under the current outer key: a wrong keyring file is found at start.
outer_key_check = Table(
    "outer_key_check",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sealed_with", String(32), nullable=False),
    Column("sealed", Text, nullable=False),
)

# Individual enrollments and enrollment groups: two id namespaces told apart by ``kind``.
# The fields that queries and conditional writes need are columns; the rest is a JSON document.
enrollments = Table(
    "enrollments",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("key", String(128), primary_key=True),
    Column("etag", String(64), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("doc", Text, nullable=False),
    # The outer key that sealed the symmetric keys in ``doc``; NULL when it holds no secret.
    Column("sealed_with", String(32), nullable=True),
)

registration_states = Table(
    "registration_states",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("group_key", String(128), nullable=True),
    Column("etag", String(64), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("doc", Text, nullable=False),
    Index("ix_registration_states_group", "group_key", "key"),
)

# The keys a TPM device was given (store/tpm.py): ``sealed`` holds, sealed under ``sealed_with``,
# the HMAC key of its latest challenge and its key at its hub; the EK and SRK it was issued for
# are public and kept as sent (base64 TPM2B_PUBLIC). One row per registration id (case-folded).
tpm_keys = Table(
    "tpm_keys",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("issued", UtcDateTime, nullable=False),
    Column("endorsement_key", Text, nullable=False),
    Column("storage_root_key", Text, nullable=False),
    Column("sealed", Text, nullable=False),
    Column("sealed_with", String(32), nullable=False),
)

# IoT hubs linked to the instance; ``key`` is the case-folded host name. ``connector`` says how the
# hub learns its devices (``none``, ``iothub``); its secret (a connection string) is ``sealed``
# under ``sealed_with`` (store/hub_connections.py), NULL for ``none``; ``endpoint`` and ``ca_pem``
# (public) reach a hub at another address or behind a private CA.
dps_hubs = Table(
    "dps_hubs",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("host_name", String(255), nullable=False),
    Column("weight", Integer, nullable=False),
    Column("region", String(64), nullable=True),
    Column("connector", String(16), nullable=False, server_default="none"),
    Column("endpoint", Text, nullable=True),
    Column("ca_pem", Text, nullable=True),
    Column("sealed", Text, nullable=True),
    Column("sealed_with", String(32), nullable=True),
)

# Client network -> region, for geoLatency allocation.
dps_regions = Table(
    "dps_regions",
    metadata,
    Column("network", String(64), primary_key=True),
    Column("region", String(64), nullable=False),
)

# One row per device register call; ``doc`` holds the final state snapshot and the context a
# pending (custom allocation) operation needs to finish after a restart.
registration_operations = Table(
    "registration_operations",
    metadata,
    Column("operation_id", String(64), primary_key=True),
    Column("registration_key", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("updated", UtcDateTime, nullable=False),
    Column("poll_not_before", UtcDateTime, nullable=True),
    Column("doc", Text, nullable=False),
    Index("ix_registration_operations_status", "status"),
)

# CA certificates of the instance (DPS's "verified CAs"); ``der`` is base64 DER.
dps_ca_certificates = Table(
    "dps_ca_certificates",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("der", Text, nullable=False),
    Column("created", UtcDateTime, nullable=False),
)

# -- certificate issuance (credential policies) ----------------------------------------------------

# ``key`` is the case-folded name. ``chain_pem`` is public (issuing CA up to the root);
# ``sealed_key`` is the issuing CA's private key, sealed (store/keyring.py) under ``sealed_with``.
# ``crl`` is the current CRL (base64 DER), numbered ``crl_number``, stale after ``crl_next_update``;
# ``upper_crls`` are the CRLs of the CAs above it.
credential_policies = Table(
    "credential_policies",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("validity_days", Integer, nullable=False),
    Column("key_type", String(16), nullable=False),
    Column("crl_url", Text, nullable=True),
    Column("chain_pem", Text, nullable=False),
    Column("sealed_key", Text, nullable=False),
    Column("sealed_with", String(32), nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("crl", Text, nullable=False),
    Column("crl_number", BigInteger, nullable=False),
    Column("crl_next_update", UtcDateTime, nullable=False),
    # CRLs of the CAs above the issuing CA (PEM), signed at creation; NULL for an operator's CA.
    Column("upper_crls", Text, nullable=True),
)

# Every certificate a policy issued (deleted with its policy, which waits until none is valid);
# ``serial`` is upper-case hex.
issued_certificates = Table(
    "issued_certificates",
    metadata,
    Column("serial", String(64), primary_key=True),
    Column("policy_key", String(64), nullable=False),
    Column("registration_key", String(128), nullable=False),
    Column("registration_id", String(128), nullable=False),
    Column("sha256_thumbprint", String(64), nullable=False),
    Column("not_before", UtcDateTime, nullable=False),
    Column("not_after", UtcDateTime, nullable=False),
    Column("issued", UtcDateTime, nullable=False),
    Column("operation_id", String(64), nullable=False),
    Column("revoked", UtcDateTime, nullable=True),
    Index("ix_issued_certificates_registration", "registration_key", "issued"),
    Index("ix_issued_certificates_policy", "policy_key", "revoked"),
)

# -- claims (zero-touch, reseller model, Sphere) -----------------------------------------------

partners = Table(
    "partners",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created", UtcDateTime, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("partner_id", BigInteger, nullable=False),
    Column("name", String(200), nullable=False),
    Column("vendor", String(16), nullable=False),
    Column("doc", Text, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Index("ix_customers_partner", "partner_id", "id"),
)

devices = Table(
    "devices",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("manufacturer", String(128)),
    Column("model", String(128)),
    Column("imei", String(32)),
    Column("meid", String(32)),
    Column("serial", String(128)),
    Column("metadata", Text),
)

# Every key a device is found by, unique: a key names one device.
device_keys = Table(
    "device_keys",
    metadata,
    Column("key", String(512), primary_key=True),
    Column("device_id", BigInteger, nullable=False),
    Index("ix_device_keys_device", "device_id"),
)

claims = Table(
    "claims",
    metadata,
    Column("device_id", BigInteger, primary_key=True),
    Column("section", String(32), primary_key=True),
    Column("customer_id", BigInteger, nullable=False),
    Column("partner_id", BigInteger, nullable=False),
    Column("order_number", String(200)),
    Column("vendor_params", Text),
    Index("ix_claims_customer", "customer_id", "device_id"),
    Index("ix_claims_partner", "partner_id", "device_id"),
)

# Durable operations of every dialect. The owner is ``owner_kind`` (``partner``, ``tenant``) and
# ``owner_id`` (the partner's id, the tenant's ``owner_id``) together; ``vendor`` (``google``,
# ``samsung``) is the back end of a partner's operation and NULL for a tenant's.
operations = Table(
    "operations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(32), nullable=False),
    Column("owner_kind", String(16), nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("vendor", String(16), nullable=True),
    Column("state", String(32), nullable=False),
    Column("total", Integer, nullable=False),
    Column("processed", Integer, nullable=False),
    Column("succeeded", Integer, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("started", UtcDateTime),
    Column("completed", UtcDateTime),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime),
    Index("ix_operations_owner", "owner_kind", "owner_id", "id"),
    Index("ix_operations_state", "state"),
)

operation_items = Table(
    "operation_items",
    metadata,
    Column("operation_id", BigInteger, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("request", Text, nullable=False),
)

operation_results = Table(
    "operation_results",
    metadata,
    Column("operation_id", BigInteger, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("result", Text, nullable=False),
)


# -- Azure Sphere ---------------------------------------------------------------------------------

# ``owner_id`` is the tenant's number in ``operations.owner_id`` (with ``owner_kind`` ``tenant``),
# in ``sphere_devices`` and in ``sphere_operations``.
tenants = Table(
    "tenants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("owner_id", BigInteger, nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created", UtcDateTime, nullable=False),
)

# One row per device ever claimed; ``device_id`` is upper-case hex, ``owner_id`` the tenant's
# (NULL once the operator released it).
sphere_devices = Table(
    "sphere_devices",
    metadata,
    Column("device_id", String(128), primary_key=True),
    Column("owner_id", BigInteger),
    Column("chip_sku", Integer, nullable=False),
    Column("device_group_id", Uuid),
    Column("product_id", Uuid),
    Column("last_available_os_version", String(64)),
    Column("last_installed_os_version", String(64)),
    Column("last_os_update", UtcDateTime),
    Column("last_update_request", UtcDateTime),
    Column("created", UtcDateTime, nullable=False),
    Index("ix_sphere_devices_owner", "owner_id", "device_id"),
)

# The public (UUID) id of a Sphere operation, beside the core operation it names.
sphere_operations = Table(
    "sphere_operations",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("operation_id", BigInteger, nullable=False, unique=True),
    Column("owner_id", BigInteger, nullable=False),
    Column("device_id", String(128)),
)

# The audit trail (services/audit.py): appended in the transaction of each change, never updated,
# deleted only by retention (by ``time``). ``id`` is the order entries were written in (an
# INTEGER PRIMARY KEY on SQLite, so it is the rowid and autoincrements there too).
audit_entries = Table(
    "audit_entries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("time", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(255), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("request_id", String(64)),
    Column("source", String(64)),
    Column("details", Text),
    Index("ix_audit_entries_time", "time"),
    Index("ix_audit_entries_target", "target"),
)
# Event webhooks (store/events.py): sealed secrets; an outbox row per event and subscriber.
event_subscriptions = Table(
    "event_subscriptions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("url", Text, nullable=False),
    Column("types", Text, nullable=False),
    Column("sealed", Text, nullable=False),
    Column("sealed_with", String(32), nullable=False),
    Column("created", UtcDateTime, nullable=False),
)
event_outbox = Table(
    "event_outbox",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("subscription_id", String(36), nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("created", UtcDateTime, nullable=False),
    Column("next_at", UtcDateTime, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until", UtcDateTime),
    Index("ix_event_outbox_state", "state", "next_at"),
    Index("ix_event_outbox_subject", "subscription_id", "subject", "seq"),
)
