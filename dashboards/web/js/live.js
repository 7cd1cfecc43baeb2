// Live readings: server-sent events from api/v1/stream, or polling api/v1/latest every
// 10 s while the stream is unavailable (missing endpoint, proxy that buffers, network error).
// The browser's EventSource resumes by itself with the id of the last event it saw (sent as
// Last-Event-ID), so the hub replays what was missed; `gap` says what a replay left out.
import { getJson } from "./format.js";

const POLL_MS = 10_000;
const STREAM_RETRY_MS = 60_000;

// handlers: {reading(r), mode(mode, detail), gap({from, to, reason})}
export function startLive(handlers) {
  let source = null;
  let pollTimer = null;

  const poll = async () => {
    try {
      const latest = await getJson("api/v1/latest");
      for (const r of latest.readings) handlers.reading(r);
      handlers.mode(source && source.readyState === EventSource.OPEN ? "live" : "polling");
    } catch (err) {
      handlers.mode("offline", err.message);
    }
  };
  const startPolling = () => {
    if (pollTimer === null) pollTimer = setInterval(poll, POLL_MS);
    handlers.mode("polling");
  };
  const stopPolling = () => {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  };
  const parse = (event) => {
    try { return JSON.parse(event.data); } catch { return null; }
  };

  const connect = () => {
    if (typeof EventSource === "undefined") { startPolling(); return; }
    source = new EventSource("api/v1/stream");
    source.addEventListener("open", () => { stopPolling(); handlers.mode("live"); });
    source.addEventListener("reading", (event) => {
      const reading = parse(event);
      if (reading) handlers.reading(reading);
    });
    // The hub replayed less than was missed: the caller fetches or reloads [from, to).
    source.addEventListener("gap", (event) => {
      const gap = parse(event);
      if (gap) handlers.gap(gap);
    });
    // The hub ends the stream after `dropped`. Its `id:` (the `resume` cursor) is now the
    // EventSource's lastEventId, and the browser reconnects after `retry:` sending it, so
    // the hub replays from there. Nothing sent yet (resume null): catch up from latest.
    source.addEventListener("dropped", (event) => {
      const dropped = parse(event);
      if (!dropped || dropped.resume === null) poll();
    });
    source.addEventListener("error", () => {
      startPolling();
      if (source.readyState === EventSource.CLOSED) {
        // Not a stream (e.g. 404 from a hub without it): poll, and try again later.
        setTimeout(connect, STREAM_RETRY_MS);
      }
    });
  };
  connect();
}
