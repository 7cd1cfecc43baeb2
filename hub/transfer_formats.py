"""The file formats of ``fabcity hub export`` and ``import``: CSV and InfluxDB line protocol.

CSV has the API's columns (``site,device,sensor,metric,ts,value,unit,flags``). Line protocol
is the InfluxDB back-ends' own schema (:mod:`hub.storage.lineprotocol`): one measurement per
metric, tags ``site``, ``device``, ``sensor`` and ``unit``, a float field ``value``, a string
field ``flags`` when there are any, and millisecond timestamps.
Every row read back is validated as a :class:`~fabcity.reading.Reading`; a bad one raises
:class:`~fabcity.errors.BadReading` with a reason, so the import can report it and go on.
"""

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import BinaryIO, Literal

from fabcity.errors import BadReading
from fabcity.reading import Reading, format_ts, parse_ts
from hub.storage.lineprotocol import reading_lines

__all__ = [
    "CSV_COLUMNS",
    "FileFormat",
    "encode",
    "header",
    "parse_line_protocol",
    "read_rows",
]

FileFormat = Literal["csv", "line-protocol"]
#: The columns of the API's CSV download (``hub/api/routes/readings.py``), in that order.
CSV_COLUMNS = ("site", "device", "sensor", "metric", "ts", "value", "unit", "flags")

_UNESCAPE = re.compile(r"\\(.)")


def header(fmt: FileFormat) -> bytes:
    """What a new file starts with."""
    return (",".join(CSV_COLUMNS) + "\n").encode() if fmt == "csv" else b""


def encode(fmt: FileFormat, readings: Iterable[Reading]) -> bytes:
    """Readings as lines of ``fmt``, UTF-8."""
    if fmt == "line-protocol":
        return b"".join(line + b"\n" for line in reading_lines(readings))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows((r.site, r.device, r.sensor, r.metric, format_ts(r.ts_ms), repr(r.value),
                      r.unit or "", " ".join(r.flags)) for r in readings)
    return out.getvalue().encode()


# -- line protocol: written by hub.storage.lineprotocol (the InfluxDB back-ends' own), read here

def _unescape(text: str) -> str:
    return _UNESCAPE.sub(r"\1", text) if "\\" in text else text


def _split(text: str, sep: str, limit: int = -1) -> list[str]:
    """Split on ``sep`` outside backslash escapes and double quotes (at most ``limit`` times)."""
    if "\\" not in text and '"' not in text:  # the common case, at C speed
        return text.split(sep, limit)
    parts: list[str] = []
    start, i, quoted = 0, 0, False
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == sep and not quoted and limit != 0:
            parts.append(text[start:i])
            start = i + 1
            limit -= 1
        i += 1
    parts.append(text[start:])
    return parts


def _pairs(section: str, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in _split(section, ","):
        key_value = _split(item, "=", 1)
        if len(key_value) != 2 or not key_value[0]:
            raise BadReading("bad_row", f"malformed {what} {item!r}")
        pairs[_unescape(key_value[0])] = key_value[1]
    return pairs


def _number(field: str) -> float:
    try:
        return float(field[:-1]) if field[-1:] in ("i", "u") else float(field)
    except ValueError:
        raise BadReading("bad_value", f"field value={field!r} is not a number") from None


def parse_line_protocol(line: str) -> Reading:
    """One line of line protocol (millisecond timestamp) as a reading."""
    sections = _split(line, " ")
    if len(sections) != 3:
        raise BadReading("bad_row", "expected 'measurement,tags fields timestamp' "
                                    f"(three parts separated by spaces), got {len(sections)}")
    key, fields_text, ts_text = sections
    measurement, *rest = _split(key, ",", 1)
    tag_text = rest[0] if rest else ""
    tags = {name: _unescape(value)
            for name, value in (_pairs(tag_text, "tag") if tag_text else {}).items()}
    unknown = set(tags) - {"site", "device", "sensor", "unit"}
    missing = {"site", "device", "sensor"} - set(tags)
    if unknown or missing:
        raise BadReading("bad_row", f"tags must be site, device, sensor and optionally unit; "
                                    f"missing {sorted(missing)}, unexpected {sorted(unknown)}")
    fields = _pairs(fields_text, "field")
    if "value" not in fields or set(fields) - {"value", "flags"}:
        raise BadReading("bad_row", "fields must be value and optionally flags, "
                                    f"got {sorted(fields)}")
    flags: tuple[str, ...] = ()
    if "flags" in fields:
        text = fields["flags"]
        if len(text) < 2 or text[0] != '"' or text[-1] != '"':
            raise BadReading("bad_flags", f"field flags={text!r} is not a quoted string")
        flags = tuple(_unescape(text[1:-1]).split(","))
    if not ts_text.lstrip("-").isdigit():
        raise BadReading("bad_timestamp", f"timestamp {ts_text!r} is not an integer (ms)")
    return Reading(tags["site"], tags["device"], tags["sensor"], _unescape(measurement),
                   _number(fields["value"]), int(ts_text), tags.get("unit"), flags)


# -- CSV -------------------------------------------------------------------------------------

def _csv_columns(line: str) -> dict[str, int]:
    names = next(csv.reader([line.lstrip("\ufeff")]), [])
    index = {name.strip(): i for i, name in enumerate(names)}
    if set(CSV_COLUMNS) - set(index):
        raise BadReading("bad_header", "the first line must name the columns "
                                       f"{','.join(CSV_COLUMNS)}; got {line!r}")
    return index


def _csv_reading(line: str, index: dict[str, int]) -> Reading:
    row = next(csv.reader([line]))
    if len(row) != len(index):
        raise BadReading("bad_row", f"expected {len(index)} columns, got {len(row)}")
    get = {name: row[i] for name, i in index.items()}.__getitem__
    try:
        value = float(get("value"))
    except ValueError:
        raise BadReading("bad_value", f"value {get('value')!r} is not a number") from None
    return Reading(get("site"), get("device"), get("sensor"), get("metric"), value,
                   parse_ts(get("ts")), get("unit") or None, tuple(get("flags").split()))


def read_rows(
    fmt: FileFormat, stream: BinaryIO, offset: int = 0, line_no: int = 0
) -> Iterator[tuple[int, int, Reading | BadReading]]:
    """``(line number, byte offset after the line, reading or why it is bad)`` for every
    non-blank line after ``offset`` (a CSV's header is read from the start of the file)."""
    index: dict[str, int] = {}
    position = 0
    if fmt == "csv":
        first = stream.readline()
        position = len(first)
        index = _csv_columns(first.decode("utf-8", "replace").rstrip("\r\n"))
        if offset == 0:
            offset, line_no = position, 1
    if offset != position:  # resuming (standard input never does: it cannot seek)
        stream.seek(offset)
    for raw in stream:
        offset += len(raw)
        line_no += 1
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield line_no, offset, BadReading("bad_row", "not UTF-8 text")
            continue
        if not text.strip() or (fmt == "line-protocol" and text.startswith("#")):
            continue
        try:
            reading = (_csv_reading(text, index) if fmt == "csv"
                       else parse_line_protocol(text))
        except BadReading as exc:
            yield line_no, offset, exc
            continue
        except csv.Error as exc:
            yield line_no, offset, BadReading("bad_row", f"malformed CSV: {exc}")
            continue
        yield line_no, offset, reading
