"""The PUBACKs of a stored batch in one socket write.

paho's ``ack()`` queues one 4-byte packet per message and wakes its network thread for each;
the thread then writes them one ``send()`` at a time: at thousands of one-reading messages a
second that is more work than storing them. ``ack_all`` hands paho the batch's PUBACKs as one
buffer, queued and written like any other outgoing packet (so in order with them, and only
by paho's own thread). A PUBACK is the same four bytes in MQTT 3.1.1 and 5 (success, no
properties: MQTT v5 section 3.4.2.1).
"""

import struct
from collections.abc import Sequence

import paho.mqtt.client as paho
from paho.mqtt.enums import MessageType

__all__ = ["ack_all"]

_PUBACK_HEADER = (MessageType.PUBACK << 24) | (2 << 16)  # type, remaining length 2, packet id


def ack_all(client: paho.Client, mids: Sequence[int]) -> None:
    """PUBACK the QoS 1 messages ``mids`` (received with ``manual_ack``), in this order."""
    if not mids:
        return
    queue = getattr(client, "_packet_queue", None)  # paho 2.x; per message otherwise
    if queue is None:
        for mid in mids:
            client.ack(mid, 1)
        return
    header = _PUBACK_HEADER
    queue(MessageType.PUBACK, struct.pack(f"!{len(mids)}I", *[header | mid for mid in mids]), 0, 0)
