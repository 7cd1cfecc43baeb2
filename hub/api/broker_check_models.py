"""``mqtt.broker_check`` of ``GET /api/v1/health``: what the start-up broker check found."""

from typing import Literal

from pydantic import BaseModel, Field

from hub.broker_check import BrokerCheck

__all__ = ["BrokerCheckHealth"]


class BrokerCheckHealth(BaseModel):
    """Informational: a warning here does not make the hub ``degraded``."""

    status: Literal["pending", "ok", "warning", "failed"] = Field(
        description="pending until ingest connects and the probe ends; warning: the broker "
                    "can drop readings, see config_lines", examples=["ok"])
    broker: str | None = Field(None, description="$SYS/broker/version",
                               examples=["mosquitto version 2.0.11"])
    sent: int = Field(0, description="probe messages published for the offline session")
    queued: int | None = Field(None, description="of those, how many the broker kept")
    receive_maximum: int | None = Field(
        None, description="the broker's MQTT v5 Receive Maximum (max_inflight_messages)")
    session_kept: bool | None = None
    persistence: Literal["kept", "lost"] | None = Field(
        None, description="after a broker restart seen by ingest: was the hub's session kept")
    problems: list[str] = []
    config_lines: list[str] = Field([], description="lines to add to mosquitto.conf")
    notes: list[str] = []

    @classmethod
    def of(cls, check: BrokerCheck) -> "BrokerCheckHealth":
        return cls(status=check.status, broker=check.broker, sent=check.sent,
                   queued=check.queued, receive_maximum=check.receive_maximum,
                   session_kept=check.session_kept, persistence=check.persistence,
                   problems=list(check.problems), config_lines=list(check.config_lines),
                   notes=list(check.notes))
