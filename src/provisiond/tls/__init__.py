"""TLS material and the TLS front."""
