"""The storage contract every back-end implements.

A back-end implements a few primitives (``write``, ``raw``, ``stats``, ``latest``, the rollup
pair, ``health``, ``close``); the downsampled ``query`` is built once, here, from bucket
statistics, so every back-end gives the same answer to the same question.

Errors are classified as Home Assistant's InfluxDB integration does:

- :class:`fabcity.errors.StorageUnavailable`: try again later (connection refused, timeout,
  5xx, 429, a locked or full disk). Ingest retries with backoff and acks nothing meanwhile.
- :class:`fabcity.errors.ReadingsRefused`: the back-end refused some readings of the batch for
  good (an InfluxDB 400 partial write, a value it cannot take); the rest may have been stored.
  Ingest splits the batch to find them and dead-letters them.
- Anything else is a bug: retried a few times, then the hub exits so systemd restarts it.

Writes are idempotent on the reading identity ``(site, device, sensor, metric, ts_ms)``: a
replayed batch stores nothing twice.
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, NamedTuple, get_args

from pydantic import BaseModel, ConfigDict, Field

from fabcity import plugins
from fabcity.reading import Reading

if TYPE_CHECKING:
    from hub.storage.rollup import RollupState

__all__ = [
    "AGGREGATES",
    "ROLLUP_RESOLUTIONS_MS",
    "SUM_SCALE",
    "Aggregate",
    "BucketStats",
    "ReadingQuery",
    "RollupValues",
    "SeriesKey",
    "SeriesNames",
    "SeriesPoints",
    "Storage",
    "StorageOptions",
    "open_storage",
    "retention_ms",
    "storage_class",
]

Aggregate = Literal["mean", "min", "max", "first", "last", "sum", "count", "increase"]
AGGREGATES: tuple[str, ...] = get_args(Aggregate)
SeriesKey = tuple[str, str, str, str]  # (site, device, sensor, metric)

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
#: A bucket whose sum overflows while adding (values near the float limit, ~1.8e308) is
#: summed again with every value divided by this power of two, then scaled back: the true sum
#: when it fits (``-x - x + x`` gives ``-x``), infinity when it does not. 2**32 values of any
#: size fit in the scaled sum, and each step rounds as the plain sum's would. Every back-end
#: does so, so they give the same sums.
SUM_SCALE = 2.0**32
ROLLUP_RESOLUTIONS_MS = (MINUTE_MS, HOUR_MS)  # finest first


class SeriesPoints(NamedTuple):
    """One series' points in ``[start, end)``, oldest first, at most ``limit``: its unit
    (``None`` when the series is not stored) and ``(ts_ms, value, flags)`` rows, ``flags``
    comma-joined or ``None``."""

    unit: str | None
    rows: list[tuple[int, float, str | None]]


@dataclass(frozen=True, slots=True)
class ReadingQuery:
    """Which readings to return; ``every_ms`` set means downsample with ``agg``.

    Filters left ``None`` match everything. ``[start_ms, end_ms)``; buckets start at multiples
    of ``every_ms`` since the epoch (the first and last bucket may be partial).
    """

    start_ms: int
    end_ms: int
    site: str | None = None
    device: str | None = None
    sensor: str | None = None
    metric: str | None = None
    every_ms: int | None = None
    agg: Aggregate = "mean"
    limit: int = 10_000

    def window(self, start_ms: int, end_ms: int, every_ms: int | None = None) -> "ReadingQuery":
        """The same filters over another range (and bucket size)."""
        return replace(self, start_ms=start_ms, end_ms=end_ms,
                       every_ms=every_ms if every_ms is not None else self.every_ms)


#: ``(site, device, sensor, metric, unit)`` of a stored series.
SeriesNames = tuple[str, str, str, str, str | None]


class RollupValues(NamedTuple):
    """One aggregate of stored rollup rows, one row per bucket: ``(series id, start_ms,
    value)`` rows ordered by series names then start (the answer's order), and the
    ``names`` of each series id. The ids are the back-end's own; they only tie the two."""

    names: dict[int, SeriesNames]
    rows: list[tuple[int, int, float]]


#: A :class:`BucketStats` as a plain tuple, same fields in the same order.
StatsRow = tuple[str, str, str, str, str | None, int, int, float, float, float, float, float,
                 float]


@dataclass(slots=True)
class BucketStats:
    """Everything any aggregate needs about one series in one time bucket.

    ``increase`` counts only steps between consecutive points *inside* the bucket: a rise adds
    its size, a drop is a counter reset and adds the value after it (a restart from zero).
    The step from the previous bucket's ``last`` to this ``first`` is added when buckets are
    combined (:mod:`hub.storage.buckets`), so rollups of any size add up exactly.
    """

    site: str
    device: str
    sensor: str
    metric: str
    unit: str | None
    start_ms: int
    count: int
    sum: float
    min: float
    max: float
    first: float
    last: float
    increase: float

    @property
    def key(self) -> SeriesKey:
        return (self.site, self.device, self.sensor, self.metric)


Retention = Annotated[str, Field(pattern=r"^(inf|[1-9][0-9]*[hdw])$")]


def retention_ms(text: str) -> int | None:
    """``"90d"`` -> milliseconds; ``"inf"`` -> ``None`` (kept forever)."""
    if text == "inf":
        return None
    return int(text[:-1]) * {"h": 3_600_000, "d": 86_400_000, "w": 604_800_000}[text[-1]]


class StorageOptions(BaseModel):
    """Base of every back-end's options (the ``[storage]`` keys besides ``backend``).

    Durations are ``<n>h``, ``<n>d``, ``<n>w`` or ``inf`` (InfluxDB's retention syntax).
    """

    model_config = ConfigDict(extra="forbid")

    retention_raw: Retention = Field("inf", description="how long raw readings are kept")
    retention_1m: Retention = Field("inf", description="how long 1-minute rollups are kept")
    retention_1h: Retention = Field("inf", description="how long 1-hour rollups are kept")


class Storage(ABC):
    """Where the hub keeps readings. Thread-safe: ingest writes while the API reads."""

    Options: ClassVar[type[StorageOptions]] = StorageOptions
    #: ``write`` can tell new readings from replays (InfluxDB overwrites silently: it cannot).
    counts_duplicates: ClassVar[bool] = True

    #: Set by the hub once rollups run; ``None`` means downsample from raw points only.
    rollups: "RollupState | None" = None

    @classmethod
    def from_options(cls, options: StorageOptions) -> "Storage":
        """Build the back-end from its validated options."""
        return cls(**options.model_dump())

    def describe(self) -> str:
        """Where the data lives, for logs and the rollup state (no secrets)."""
        return type(self).__name__

    # -- writing ------------------------------------------------------------------------
    @abstractmethod
    def write(self, readings: Sequence[Reading]) -> int | None:
        """Store ``readings`` durably; return how many were new (replays count 0), or
        ``None`` when the back-end cannot tell (see :attr:`counts_duplicates`).

        Returns only once the data survives a crash of this process. Raises
        ``StorageUnavailable`` or ``ReadingsRefused`` (module docstring).
        """

    # -- reading ------------------------------------------------------------------------
    @abstractmethod
    def raw(self, q: ReadingQuery) -> list[Reading]:
        """Raw readings in ``[q.start_ms, q.end_ms)``, ordered by site, device, sensor,
        metric, then time; at most ``q.limit``. ``q.every_ms`` is ignored."""

    def series_points(self, q: ReadingQuery) -> "SeriesPoints | None":
        """The raw points of the one series ``q`` names (all four names set) as plain rows,
        for answers that need no :class:`Reading` per point; ``None`` when this back-end
        has no such read (callers use :meth:`raw`). ``q.every_ms`` is ignored."""
        return None

    @abstractmethod
    def stats(self, q: ReadingQuery) -> list[BucketStats]:
        """Statistics of the raw points per series and bucket of ``q.every_ms`` (set),
        ordered by series then bucket start; buckets with no point are left out."""

    @abstractmethod
    def latest(
        self, site: str | None = None, device: str | None = None, metric: str | None = None
    ) -> list[Reading]:
        """The newest reading of every (site, device, sensor, metric) matching the filters."""

    def query(self, q: ReadingQuery) -> list[Reading]:
        """Raw readings, or one reading per bucket (``ts`` = bucket start, value = ``q.agg``)
        when ``q.every_ms`` is set. Ordered by series, then time; at most ``q.limit``."""
        if q.every_ms is None:
            return self.raw(q)
        from hub.storage.buckets import downsample

        return downsample(self, q)

    # -- rollups ------------------------------------------------------------------------
    @abstractmethod
    def write_rollup(self, resolution_ms: int, rows: Sequence[BucketStats]) -> None:
        """Store bucket statistics of one resolution; a row replaces the one with the same
        series and bucket start (idempotent)."""

    @abstractmethod
    def read_rollup(self, resolution_ms: int, q: ReadingQuery) -> list[BucketStats]:
        """Stored rollup rows of ``resolution_ms`` matching ``q``'s filters and range,
        ordered by series then bucket start. A back-end may stop after
        ``q.limit * q.every_ms / resolution_ms`` rows: no more can reach ``q.limit`` buckets."""

    def read_rollup_rows(self, resolution_ms: int, q: ReadingQuery) -> list[StatsRow]:
        """:meth:`read_rollup` as plain tuples in :class:`BucketStats` field order (a
        1-minute answer read from 1-minute rollups needs no object per row). Default: built
        from :meth:`read_rollup`."""
        return [(r.site, r.device, r.sensor, r.metric, r.unit, r.start_ms, r.count, r.sum,
                 r.min, r.max, r.first, r.last, r.increase)
                for r in self.read_rollup(resolution_ms, q)]

    def rollup_values(self, resolution_ms: int, q: ReadingQuery) -> RollupValues | None:
        """The value of aggregate ``q.agg`` of every stored rollup row of ``resolution_ms``
        matching ``q``'s filters and range (at most ``q.limit`` rows), worked out by the
        back-end itself, for answers whose buckets are the rollups' own and need no object
        per bucket. The values are those :func:`hub.storage.buckets.value_of` gives, bit
        for bit, not finite ones included. ``None`` when this back-end has no such read or
        not for this aggregate (callers use :meth:`read_rollup_rows`)."""
        return None

    def expire(self, now_ms: int) -> int:
        """Delete what is older than its retention, for back-ends that do not expire data
        themselves; return how many rows went. Default: nothing to do."""
        return 0

    @abstractmethod
    def first_ms(self) -> int | None:
        """Time of the oldest raw point, or ``None`` when empty (where rollups start)."""

    # -- life cycle ---------------------------------------------------------------------
    def health(self) -> str:
        """``"ok"`` or a short description of what is wrong."""
        return "ok"

    @abstractmethod
    def close(self) -> None:
        """Release connections; safe to call twice. Afterwards every call raises
        ``StorageUnavailable``."""


def storage_class(backend: str) -> type[Storage]:
    """The class registered as ``backend`` in the ``fabcity.storage`` entry points."""
    cls: type[Storage] = plugins.load("fabcity.storage", backend)
    return cls


def open_storage(backend: str, **options: Any) -> Storage:
    """Instantiate the back-end registered as ``backend``, validating its options."""
    cls = storage_class(backend)
    return cls.from_options(cls.Options.model_validate(options))
