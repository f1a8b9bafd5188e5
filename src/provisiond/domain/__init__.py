"""Pure rules and models: no HTTP, no SQL, no I/O."""
