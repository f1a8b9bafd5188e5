"""Use cases: each opens its transaction, calls the store and the domain, and returns domain values."""
