"""Benchmarks: `make bench` runs each against a real `provisiond serve` and prints the table."""
