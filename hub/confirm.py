"""Confirmations to devices: which of their batches one ingest write batch stored.

A device that sets ``"confirm": true`` in a ``readings`` payload asks the hub to say, on its
own ``fabcity/v1/{site}/{device}/ack`` topic, when the batch's readings are durably stored
(or dead-lettered, or refused for good). The ingest writer collects the batches of one write
here while decoding and publishes the result only after the write returned: one message per
device per write batch, nothing for devices that did not ask (docs/protocol.md, section 7).
"""

from collections.abc import Iterator

from fabcity.ack import encode_ack
from fabcity.topic import Kind, Topic

__all__ = ["ACK_QOS", "Confirmations"]

#: QoS of the hub's ack messages. 0 is enough: an ack lost with a broken connection (the only
#: way a live TCP session loses one) is made up by the device, which resends what stays
#: unconfirmed after a reconnect or its timeout; storage is idempotent, so that stores nothing
#: twice. QoS 1 would cost a PUBACK and the hub's in-flight window per message.
ACK_QOS = 0


class Confirmations:
    """Sequence ranges asking for confirmation, per device, in one write batch."""

    __slots__ = ("_ranges",)

    def __init__(self) -> None:
        self._ranges: dict[tuple[str, str], list[tuple[int, int]]] = {}

    def add(self, site: str, device: str, first: int, last: int) -> None:
        """Note a decoded batch of ``site``/``device`` covering sequence numbers
        ``first`` to ``last`` (inclusive)."""
        self._ranges.setdefault((site, device), []).append((first, last))

    def __len__(self) -> int:
        """Devices to confirm to."""
        return len(self._ranges)

    def messages(self) -> Iterator[tuple[str, bytes]]:
        """(topic, payload) of every ack to publish: call only once the batch is stored."""
        for (site, device), ranges in self._ranges.items():
            topic = str(Topic(site, device, Kind.ACK))
            for payload in encode_ack(ranges):
                yield topic, payload
