"""The Azure DPS device API: devices register and poll their registration (HTTP; MQTT later)."""
