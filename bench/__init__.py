"""Benchmarks: `make bench` runs each against a real `provisiond serve` and prints the table."""

# What every benchmarked server runs with: the bench routes (baselines), no Retry-After wait
# between register and poll, and no per-request log lines.
SERVER_SETTINGS = {"registration_retry_after": 0, "bench_endpoints": True, "log_level": "warning"}
