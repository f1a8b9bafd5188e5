"""Azure Sphere public API v2 (tenants, device claims as operations), on the claims core."""
