"""The edge agent: sensor drivers, sampler, durable buffer and MQTT publisher."""
