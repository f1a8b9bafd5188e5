"""The DPS device API over MQTT 3.1.1 (TLS on the MQTT port, or WebSocket on the HTTPS port)."""
