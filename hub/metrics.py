"""Prometheus metrics of the hub, in a collector of its own (one per hub instance)."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # the *_created series only add noise to every scrape

__all__ = ["HubMetrics"]


class HubMetrics:
    """The hub's counters; ``GET /metrics`` exposes ``prometheus``."""

    def __init__(self) -> None:
        self.prometheus = CollectorRegistry()
        self.messages_in = Counter(
            "fabcity_messages_received_total", "MQTT messages received, by topic kind",
            ["kind"], registry=self.prometheus)
        self.readings_stored = Counter(
            "fabcity_readings_stored_total", "Readings written to storage (new ones)",
            registry=self.prometheus)
        self.readings_duplicate = Counter(
            "fabcity_readings_duplicate_total",
            "Readings received again (replays after a crash or reconnect) and not stored twice",
            registry=self.prometheus)
        self.rejected = Counter(
            "fabcity_rejected_total", "Messages or readings refused, by reason",
            ["reason"], registry=self.prometheus)
        self.confirmations = Counter(
            "fabcity_confirmations_sent_total",
            "ack messages telling devices which of their batches are stored",
            registry=self.prometheus)
        self.write_latency = Histogram(
            "fabcity_storage_write_seconds", "Time to write one batch durably",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=self.prometheus)
        self.write_errors = Counter(
            "fabcity_storage_write_errors_total", "Batch writes that failed and will be retried",
            registry=self.prometheus)
        self.dead_letters = Counter(
            "fabcity_readings_dead_lettered_total",
            "Readings the storage refused for good, kept as dead letters, by cause",
            ["reason"], registry=self.prometheus)
        self.storage_available = Gauge(
            "fabcity_storage_available", "1 while storage takes writes, 0 during an outage",
            registry=self.prometheus)
        self.storage_available.set(1)
        self.pending = Gauge(
            "fabcity_ingest_pending_messages", "Messages received but not yet stored and acked",
            registry=self.prometheus)
        self.mqtt_connected = Gauge(
            "fabcity_mqtt_connected", "1 while the hub is connected to the broker",
            registry=self.prometheus)
        # forwarders (hub.forward): readings handed on to open-data networks
        self.forwarded = Counter(
            "fabcity_forwarded_readings_total", "Readings a remote network accepted",
            ["forwarder"], registry=self.prometheus)
        self.forward_retried = Counter(
            "fabcity_forward_retried_readings_total",
            "Readings in requests sent again after no answer, a 429 or a 5xx",
            ["forwarder"], registry=self.prometheus)
        self.forward_refused = Counter(
            "fabcity_forward_refused_readings_total",
            "Readings a remote network refused for good (a 4xx other than 429); not resent",
            ["forwarder"], registry=self.prometheus)
        self.forward_skipped = Counter(
            "fabcity_forward_skipped_readings_total",
            "Readings not sent, by reason (flagged by a quality check, stale)",
            ["forwarder", "reason"], registry=self.prometheus)
