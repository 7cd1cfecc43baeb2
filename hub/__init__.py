"""The hub: MQTT ingest, storage back-ends, the HTTP API and the citizen page."""
