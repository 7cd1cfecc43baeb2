"""The forwarder contract: read stored readings past a durable cursor, hand them to a remote
network, move the cursor only once the network has answered.

A forwarder runs in a thread of its own. Each pass it looks for readings stored after its
per-series cursors (and at least ``settle_s`` old, so a batch still being written is not cut in
two), sends them in the network's format and commits the new cursors before the next request.
The answer decides (see :func:`hub.forward.http.judge`):

- 2xx: forwarded, the cursor moves;
- no answer, 408, 429, 5xx: the same request again after a backoff with jitter, or after the
  ``Retry-After`` the network asked for; the cursor stays, so nothing is lost meanwhile;
- any other 4xx: refused for good, logged with the answer's body and counted, and the cursor
  moves on (retrying the same body cannot help, and it would block every later reading).

Forwarders register by entry point in ``fabcity.forwarders``; ``[[forward]] to = "…"`` names one.
"""

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fabcity import __version__, plugins
from fabcity.errors import FabcityError
from fabcity.names import SITE_RE
from fabcity.reading import Reading, format_ts, now_ms
from hub.forward.cursor import ForwardCursors
from hub.forward.http import Verdict, backoff_s, judge, post, retry_after_s
from hub.metrics import HubMetrics
from hub.storage.base import ReadingQuery, SeriesKey, Storage

__all__ = ["Forwarder", "ForwarderOptions", "ForwarderStatus", "forwarder_class"]

log = logging.getLogger(__name__)

USER_AGENT = f"fabcity/{__version__}"
_NAME = SITE_RE.pattern.strip("^$")
_DEVICE_REF = rf"^{_NAME}/{_NAME}$"


class ForwarderOptions(BaseModel):
    """The keys every ``[[forward]]`` entry takes; a forwarder's ``Options`` adds its own."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="the network: a name in the fabcity.forwarders entry points")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$",
                             description="names the cursor, metrics and health entry")
    devices: list[str] = Field([], description='"site/device" whose readings are forwarded')
    sites: list[str] = Field([], description="sites whose devices are all forwarded")
    url: str = Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", description="the service root")
    interval_s: float = Field(60, ge=1, le=86_400, description="between passes")
    send_flags: list[str] = Field(
        [], description="quality flags (e.g. suspect_humidity) whose readings are still sent")
    backfill_s: float = Field(0, ge=0, description="on the very first run, start this far back")
    settle_s: float = Field(10, ge=0, le=3600, description="readings younger wait a pass")
    timeout_s: float = Field(30, gt=0, le=300, description="per request")

    @model_validator(mode="after")
    def _something_to_forward(self) -> "ForwarderOptions":
        import re

        if not self.devices and not self.sites:
            raise ValueError("give devices = [\"site/device\", …] or sites = [\"site\", …]")
        for device in self.devices:
            if not re.fullmatch(_DEVICE_REF, device):
                raise ValueError(f"devices: {device!r} must be \"site/device\"")
        for site in self.sites:
            if not SITE_RE.fullmatch(site):
                raise ValueError(f"sites: {site!r} is not a site name")
        return self


@dataclass(frozen=True, slots=True)
class ForwarderStatus:
    """What ``/api/v1/health`` shows of one forwarder."""

    name: str
    to: str
    lag_s: float
    forwarded_until: str | None
    status: str


class _Stopping(Exception):
    """The hub is stopping: leave the request unsent and the cursor where it is."""


class Forwarder(ABC):
    """Forwards the readings of the configured devices to one remote network."""

    Options: ClassVar[type[ForwarderOptions]] = ForwarderOptions

    def __init__(self, options: ForwarderOptions, storage: Storage, cursors: ForwardCursors,
                 metrics: HubMetrics | None = None) -> None:
        self.options = options
        self.storage = storage
        self.cursors = cursors
        self.metrics = metrics or HubMetrics()
        self.name = options.name or self.default_name()
        self._origin_ms = cursors.origin(self.name, now_ms() - int(options.backfill_s * 1000))
        self._cursor = cursors.load(self.name)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem: str | None = None  # why the last request is being retried, or None

    # -- what a network implements --------------------------------------------------------
    @abstractmethod
    def default_name(self) -> str:
        """The name when ``name`` is not configured (no secrets: it shows in /metrics)."""

    @abstractmethod
    def wants(self, key: SeriesKey, unit: str | None) -> bool:
        """Whether this network takes the series at all."""

    @abstractmethod
    def forward_pending(self, series: list[SeriesKey], end_ms: int, now: int) -> None:
        """Send everything of ``series`` stored after its cursor and before ``end_ms``."""

    # -- helpers for the networks ---------------------------------------------------------
    def start_of(self, key: SeriesKey) -> int:
        """The first instant of ``key`` not yet forwarded."""
        cursor = self._cursor.get(key)
        return self._origin_ms if cursor is None else max(cursor + 1, self._origin_ms)

    def pending(self, key: SeriesKey, start_ms: int, end_ms: int, limit: int) -> list[Reading]:
        """Stored readings of one series in ``[start_ms, end_ms)``, oldest first."""
        if start_ms >= end_ms:
            return []
        site, device, sensor, metric = key
        return self.storage.raw(ReadingQuery(start_ms, end_ms, site, device, sensor, metric,
                                             limit=limit))

    def sendable(self, readings: Iterable[Reading]) -> list[Reading]:
        """Readings without a quality flag (other than the allowed ones); the rest are
        counted as skipped."""
        allowed = set(self.options.send_flags)
        return [r for r in readings if allowed.issuperset(r.flags)]

    def skip(self, count: int, reason: str) -> None:
        if count:
            self.metrics.forward_skipped.labels(self.name, reason).inc(count)

    def commit(self, cursors: Mapping[SeriesKey, int]) -> None:
        """Move cursors durably (before the next request goes out)."""
        moved = {key: ts for key, ts in cursors.items() if ts > self._cursor.get(key, -1)}
        self.cursors.advance(self.name, moved)
        self._cursor.update(moved)

    def deliver(self, url: str, body: bytes, headers: dict[str, str], count: int) -> Verdict:
        """POST until the network accepts or refuses for good; ``count`` readings ride on it.
        Returns ``"sent"`` or ``"refused"``; raises :class:`_Stopping` if the hub stops."""
        headers = {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers}
        attempt = 0
        while True:
            if self._stop.is_set():
                raise _Stopping
            answer = post(url, body, headers, self.options.timeout_s)
            verdict = judge(answer)
            if verdict == "sent":
                self.metrics.forwarded.labels(self.name).inc(count)
                if self.problem is not None:
                    log.info("forward %s: %s accepts again", self.name, url)
                self.problem = None
                return verdict
            if verdict == "refused":
                self.metrics.forward_refused.labels(self.name).inc(count)
                log.warning("forward %s: %s refused %d readings with HTTP %d, moving on: %s",
                            self.name, url, count, answer.status, answer.body.strip()[:500])
                self.problem = None
                return verdict
            wait = retry_after_s(answer.retry_after) if answer.status in (429, 503) else None
            if wait is None:
                wait = backoff_s(attempt)
            reason = f"HTTP {answer.status}" if answer.status else answer.body
            if self.problem is None:
                log.warning("forward %s: %s (%s); retrying, next in %.1f s", self.name, url,
                            reason, wait)
            self.problem = f"retrying: {reason}"
            self.metrics.forward_retried.labels(self.name).inc(count)
            attempt += 1
            if self._stop.wait(wait):
                raise _Stopping

    # -- the pass ---------------------------------------------------------------------------
    def newest(self) -> dict[SeriesKey, Reading]:
        """The newest stored reading of every series of the configured devices and sites."""
        found: dict[SeriesKey, Reading] = {}
        for ref in self.options.devices:
            site, device = ref.split("/")
            found.update({r[:4]: r for r in self.storage.latest(site=site, device=device)})
        for site in self.options.sites:
            found.update({r[:4]: r for r in self.storage.latest(site=site)})
        return found

    def series(self) -> list[SeriesKey]:
        """Every stored series of the configured devices and sites this network takes."""
        return sorted(key for key, r in self.newest().items() if self.wants(key, r.unit))

    def run_once(self, now: int | None = None) -> None:
        """Forward everything ready at ``now``."""
        now = now_ms() if now is None else now
        self.forward_pending(self.series(), now - int(self.options.settle_s * 1000), now)

    def status(self) -> ForwarderStatus:
        """Lag: how far the newest stored reading of any series is ahead of its cursor."""
        lag_ms = 0
        until: int | None = None
        try:
            newest = self.newest()
        except (FabcityError, OSError) as exc:
            return ForwarderStatus(self.name, self.options.to, 0.0, None, f"storage: {exc}")
        for key, reading in newest.items():
            if not self.wants(key, reading.unit):
                continue
            done = self.start_of(key) - 1
            lag_ms = max(lag_ms, reading.ts_ms - done)
            until = done if until is None else min(until, done)
        return ForwarderStatus(self.name, self.options.to, lag_ms / 1000,
                               format_ts(until) if until is not None else None,
                               self.problem or "ok")

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"forward-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.options.timeout_s + 5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except _Stopping:
                return
            except (FabcityError, OSError) as exc:  # storage or state file: next pass
                self.problem = f"storage: {exc}"
                log.warning("forward %s paused: %s", self.name, exc)
            except Exception:
                self.problem = "internal error (see the log)"
                log.exception("forward %s: pass failed", self.name)
            self._stop.wait(self.options.interval_s)


def forwarder_class(to: str) -> type[Forwarder]:
    """The class registered as ``to`` in the ``fabcity.forwarders`` entry points."""
    cls: type[Forwarder] = plugins.load("fabcity.forwarders", to)
    return cls
