// Live readings: server-sent events from api/v1/stream, or polling api/v1/latest every
// 10 s while the stream is unavailable (missing endpoint, proxy that buffers, network error).
import { getJson } from "./format.js";

const POLL_MS = 10_000;
const STREAM_RETRY_MS = 60_000;

export function startLive(onReading, onMode) {
  let source = null;
  let pollTimer = null;

  const poll = async () => {
    try {
      const latest = await getJson("api/v1/latest");
      for (const r of latest.readings) onReading(r);
      onMode(source && source.readyState === EventSource.OPEN ? "live" : "polling");
    } catch (err) {
      onMode("offline", err.message);
    }
  };
  const startPolling = () => {
    if (pollTimer === null) pollTimer = setInterval(poll, POLL_MS);
    onMode("polling");
  };
  const stopPolling = () => {
    if (pollTimer !== null) clearInterval(pollTimer);
    pollTimer = null;
  };

  const connect = () => {
    if (typeof EventSource === "undefined") { startPolling(); return; }
    source = new EventSource("api/v1/stream");
    source.addEventListener("open", () => { stopPolling(); onMode("live"); });
    source.addEventListener("reading", (event) => {
      let reading;
      try { reading = JSON.parse(event.data); } catch { return; }
      onReading(reading);
    });
    // The hub dropped us for reading too slowly: start again and catch up once.
    source.addEventListener("dropped", () => {
      source.close();
      poll();
      setTimeout(connect, 1000);
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
