"""CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection): the checksum of every frame.

``binascii.crc_hqx`` computes exactly this polynomial in C; the check value of ``123456789``
is 0x29B1, the same as ``fc_crc16`` in ``firmware/fabcity_proto.c``.
"""

from binascii import crc_hqx

__all__ = ["CRC_INIT", "crc16"]

CRC_INIT = 0xFFFF


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE of ``data``."""
    return crc_hqx(data, CRC_INIT)
