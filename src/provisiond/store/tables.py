"""Table definitions. Migrations in ``migrations/versions`` create exactly these."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

from provisiond.store.types import UtcDateTime

__all__ = [
    "dps_ca_certificates",
    "dps_hubs",
    "dps_instance",
    "dps_policies",
    "dps_regions",
    "enrollments",
    "metadata",
    "registration_operations",
    "registration_states",
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

dps_policies = Table(
    "dps_policies",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("primary_key", String(128), nullable=False),
    Column("secondary_key", String(128), nullable=False),
    Column("rights", String(255), nullable=False),
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

# IoT hubs linked to the instance; ``key`` is the case-folded host name.
dps_hubs = Table(
    "dps_hubs",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("host_name", String(255), nullable=False),
    Column("weight", Integer, nullable=False),
    Column("region", String(64), nullable=True),
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
