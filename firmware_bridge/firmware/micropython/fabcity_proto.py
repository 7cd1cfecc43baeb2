# mypy: ignore-errors
# fabcity_proto for MicroPython: framing and CRC of the fabcity firmware bridge protocol 1.0.
#
# The same bytes as fabcity_proto.c and the host's encoder (the host's test suite checks it
# under CPython). Frames: "$<seq> <KIND> <key>=<value> ...*<CRC16>\r\n", CRC-16/CCITT-FALSE
# of the bytes between "$" and "*". Specification: docs/firmware-protocol.md.

PROTOCOL_VERSION = "1.0"
SEQ_MODULUS = 65536
MAX_LINE_BYTES = 128  # receive buffer: host commands are short

FRAME = "frame"
BAD_CHECKSUM = "bad_checksum"
MALFORMED = "malformed"
OVERLONG = "overlong"

MIN_IDENTIFY_S = 1
MAX_IDENTIFY_S = 3600
DEFAULT_IDENTIFY_S = 5

_KEY_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def crc16(data):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF) of a bytes-like object."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def fixed(mantissa, decimals):
    """mantissa * 10**-decimals as text, e.g. fixed(2150, 2) == "21.50"."""
    sign = "-" if mantissa < 0 else ""
    scale = 10 ** decimals
    whole, rest = divmod(abs(mantissa), scale)
    if not decimals:
        return sign + str(whole)
    frac = str(rest)
    return sign + str(whole) + "." + "0" * (decimals - len(frac)) + frac


def identify_seconds(fields):
    """The s field of an IDENTIFY command as an int, or None if out of range (bad_arg)."""
    text = fields.get("s", str(DEFAULT_IDENTIFY_S))
    if not text or not all("0" <= c <= "9" for c in text):
        return None
    value = int(text)
    return value if MIN_IDENTIFY_S <= value <= MAX_IDENTIFY_S else None


class Writer:
    """Numbers and writes frames; ``write`` takes bytes (e.g. sys.stdout.buffer.write)."""

    def __init__(self, write):
        self.write = write
        self.seq = 0

    def frame(self, kind, fields):
        parts = [str(self.seq), kind]
        for key, value in fields:
            parts.append(key + "=" + str(value))
        body = " ".join(parts).encode()
        self.seq = (self.seq + 1) % SEQ_MODULUS
        self.write(b"$" + body + f"*{crc16(body):04X}\r\n".encode())

    def skip(self, count):
        self.seq = (self.seq + count) % SEQ_MODULUS

    def hello(self, uptime_ms, device, firmware, channels, interval_ms, ref=None):
        fields = [("t", uptime_ms)]
        if ref is not None:
            fields.append(("ref", ref))
        fields += [("proto", PROTOCOL_VERSION), ("dev", device), ("fw", firmware),
                   ("iv", interval_ms)]
        if channels:
            fields.append(("ch", ",".join(":".join(c) for c in channels)))
        self.frame("HELLO", fields)

    def readings(self, uptime_ms, values):
        """values: (channel index, text) pairs; format numbers with fixed()."""
        self.frame("R", [("t", uptime_ms)] + [(str(i), v) for i, v in values])

    def ack(self, uptime_ms, ref, fields=()):
        all_fields = [("t", uptime_ms), ("ref", ref)]
        all_fields.extend(fields)
        self.frame("ACK", all_fields)

    def error(self, uptime_ms, code, ref=None, channel=None):
        fields = [("t", uptime_ms)]
        if ref is not None:
            fields.append(("ref", ref))
        fields.append(("code", code))
        if channel is not None:
            fields.append(("ch", channel))
        self.frame("ERR", fields)


class Reader:
    """Feed received bytes; get (status, frame) pairs, frame = (seq, kind, fields dict).

    Like fc_reader_feed: every "$" starts a frame, bytes outside frames are ignored.
    """

    def __init__(self, max_line=MAX_LINE_BYTES):
        self.max_line = max_line
        self._buf = bytearray()
        self._in_frame = False
        self._overlong = False

    def feed(self, data):
        results = []
        for byte in data:
            if byte == 0x24:  # "$"
                self._in_frame = True
                self._overlong = False
                self._buf = bytearray()
            elif not self._in_frame:
                continue
            elif byte == 0x0A:  # "\n"
                self._in_frame = False
                results.append((OVERLONG, None) if self._overlong else _finish(self._buf))
                self._buf = bytearray()
            elif len(self._buf) >= self.max_line:
                self._overlong = True
            else:
                self._buf.append(byte)
        return results


def _finish(line):
    if line and line[-1] == 0x0D:
        line = line[:-1]
    star = -1
    for i in range(len(line) - 1, -1, -1):
        if line[i] == 0x2A:  # "*"
            star = i
            break
    if star < 0 or len(line) - star != 5:
        return MALFORMED, None
    try:
        text = bytes(line[star + 1:]).decode()
        for c in text:
            if c not in "0123456789ABCDEFabcdef":
                return MALFORMED, None
        crc = int(text, 16)
    except (ValueError, UnicodeError):
        return MALFORMED, None
    body = bytes(line[:star])
    if crc16(body) != crc:
        return BAD_CHECKSUM, None
    for byte in body:
        if byte < 0x20 or byte > 0x7E:
            return MALFORMED, None
    frame = _parse(body.decode())
    return (FRAME, frame) if frame is not None else (MALFORMED, None)


def _parse(body):
    tokens = body.split(" ")
    if len(tokens) < 2:
        return None
    seq, kind = tokens[0], tokens[1]
    if not seq or len(seq) > 5 or not all("0" <= c <= "9" for c in seq) or int(seq) > 65535:
        return None
    if not kind or len(kind) > 8 or not all("A" <= c <= "Z" for c in kind):
        return None
    fields = {}
    for token in tokens[2:]:
        eq = token.find("=")
        key, value = token[:eq], token[eq + 1:]
        if eq <= 0 or not value or len(key) > 16 or not all(c in _KEY_CHARS for c in key):
            return None
        if key not in fields:
            fields[key] = value
    return int(seq), kind, fields
