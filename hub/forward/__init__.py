"""Forwarders: the hub hands stored readings on to open-data networks (Sensor.Community,
openSenseMap), each in a thread of its own behind a durable per-series cursor.

See docs/forwarding.md. Nothing is imported here, so ``hub.config`` stays light.
"""
