// A site's machines (a device and sensor reporting power, energy or state, from
// api/v1/machines): per UTC day of the last 7, kWh, hours running and idle and starts, as a
// table with inline bars; the state now, updated live from the stream; licence and CSV.
import { el, getJson, query, seriesKey } from "./format.js";

const DAYS = 7;
const DAY_MS = 86_400_000;
const RELOAD_MS = 5 * 60_000; // today's row grows while the page stays open

// [start, end) of the last 7 UTC days, today (so far) included.
function lastDays(nowMs) {
  const today = Math.floor(nowMs / DAY_MS) * DAY_MS;
  return { start: new Date(today - (DAYS - 1) * DAY_MS).toISOString(), end: "now" };
}

const fixed = (value, digits) => value.toLocaleString(undefined,
  { minimumFractionDigits: digits, maximumFractionDigits: digits });
const kwhText = (v) => fixed(v, v < 10 ? 2 : 1);
const hoursText = (v) => fixed(v, 1);
const startsText = (v) => fixed(v, 0);

// A number and a bar under it, as long as value / max; "–" (said "unknown") when null.
function cell(value, max, text) {
  if (value === null || value === undefined) {
    return el("td", { class: "num" }, el("span", { "aria-hidden": "true" }, "–"),
      el("span", { class: "visually-hidden" }, "unknown"));
  }
  const bar = el("span", { class: "bar", "aria-hidden": "true" });
  bar.style.width = `${max > 0 ? Math.round((100 * value) / max) : 0}%`;
  return el("td", { class: "num" }, text(value), bar);
}

const sum = (periods, key) => {
  const known = periods.map((p) => p[key]).filter((v) => v !== null && v !== undefined);
  return known.length ? known.reduce((a, b) => a + b, 0) : null;
};

function dayLabel(p, nowMs) {
  const start = Date.parse(p.start);
  if (nowMs - start < DAY_MS) return "Today";
  return new Date(start).toLocaleDateString(undefined,
    { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });
}

// Running or idle from a reading of the series that decides it (state, or power > N W).
function runningOf(machine, r) {
  if (!r) return null;
  if (machine.running_source === "state") return r.value >= 0.5;
  const limit = /^power > ([0-9.]+)/.exec(machine.running_source || "");
  return limit ? r.value > Number(limit[1]) : null;
}

function stateBadge(running) {
  if (running === null) return el("span", { class: "badge unknown" }, "state unknown");
  return el("span", { class: `badge ${running ? "running" : "idle"}` }, running ? "running" : "idle");
}

function machineArticle(state, m, title, nowMs) {
  const source = m.running_source === "state" ? "state" : (m.running_source || "").startsWith("power") ? "power" : null;
  const key = source ? seriesKey({ site: m.site, device: m.device, sensor: m.sensor, metric: source }) : null;
  const now = el("p", { class: "machine-now", "aria-live": "polite" }, "Now: ",
    stateBadge(runningOf(m, key && state.latest.get(key))));
  if (key) {
    state.listen(now, (r) => {
      if (seriesKey(r) !== key) return;
      const badge = now.querySelector(".badge");
      const next = stateBadge(runningOf(m, r));
      if (badge.textContent !== next.textContent) badge.replaceWith(next);
    });
  }
  const periods = m.periods;
  const max = (k) => Math.max(0, ...periods.map((p) => p[k] ?? 0));
  const kwhMax = max("kwh");
  const hoursMax = Math.max(max("hours_running"), max("hours_idle"));
  const startsMax = max("starts");
  const rows = periods.map((p) => {
    // A day without a single reading: the API's zeros mean "not measured" here.
    const measured = p.coverage === null ? Boolean(p.kwh) : p.coverage > 0;
    const value = (v) => (measured ? v : null);
    return el("tr", null, el("th", { scope: "row" }, dayLabel(p, nowMs)),
      cell(value(p.kwh), kwhMax, kwhText), cell(value(p.hours_running), hoursMax, hoursText),
      cell(value(p.hours_idle), hoursMax, hoursText), cell(value(p.starts), startsMax, startsText));
  });
  const total = (k, text) => {
    const v = sum(periods, k);
    return el("td", { class: "num" }, v === null ? "–" : text(v));
  };
  const table = el("table", { class: "machine-days" },
    el("caption", { class: "visually-hidden" }, `Daily use of ${title}, last ${DAYS} days (UTC days)`),
    el("thead", null, el("tr", null,
      el("th", { scope: "col" }, "Day"),
      el("th", { scope: "col", class: "num" }, "kWh"),
      el("th", { scope: "col", class: "num" }, el("span", { "aria-hidden": "true" }, "Run h"),
        el("span", { class: "visually-hidden" }, "Hours running")),
      el("th", { scope: "col", class: "num" }, el("span", { "aria-hidden": "true" }, "Idle h"),
        el("span", { class: "visually-hidden" }, "Hours idle")),
      el("th", { scope: "col", class: "num" }, "Starts"))),
    el("tbody", null, rows),
    el("tfoot", null, el("tr", null, el("th", { scope: "row" }, `${DAYS} days`),
      total("kwh", kwhText), total("hours_running", hoursText), total("hours_idle", hoursText),
      total("starts", startsText))));
  const sources = [m.kwh_source ? `kWh from ${m.kwh_source}` : "kWh unknown",
    m.running_source ? `running when ${m.running_source === "state" ? "state is 1" : m.running_source}` : "running time unknown"];
  return el("article", { class: "machine", "data-device": m.device, "data-sensor": m.sensor },
    el("h3", null, title), now,
    el("div", { class: "scroll-x", tabindex: "0", role: "region", "aria-label": `Daily use of ${title}` }, table),
    el("p", { class: "hint" }, sources.join("; "), "."));
}

// The section (removed again when the site has no machine); {site, licence, deviceName}.
export function machinesSection(state, { site, licence, deviceName }) {
  const nowMs = Date.now();
  const params = { site, ...lastDays(nowMs), period: "day" };
  const csv = `api/v1/machines?${query({ ...params, format: "csv" })}`;
  const box = el("div", { class: "machines" }, el("p", { class: "meta" }, "Loading…"));
  const section = el("section", { "aria-labelledby": "machines-title", class: "machines-section" },
    el("h2", { id: "machines-title" }, "Machines"),
    el("p", { class: "meta" }, `Energy, hours running and idle and starts per day, last ${DAYS} days `
      + `(UTC days). Licence: ${licence}. `,
    el("a", { href: csv, download: `${site}-machines-${DAYS}d.csv` }, "Download CSV",
      el("span", { class: "visually-hidden" }, " of the machines"))),
    box);
  let timer = null;
  const load = () => getJson(`api/v1/machines?${query(params)}`).then((answer) => {
    if (!answer.machines.length) { section.remove(); return; }
    box.replaceChildren(...answer.machines.map((m) => {
      const title = m.name || `${deviceName(m.device)} (${m.sensor})`;
      return machineArticle(state, m, title, Date.now());
    }));
  }).catch((err) => {
    box.replaceChildren(el("p", { class: "meta" }, `Could not load the machines (${err.message}).`));
  });
  const tick = () => {
    if (!section.isConnected) return;
    load();
    timer = setTimeout(tick, RELOAD_MS);
  };
  state.onGap(section, () => { clearTimeout(timer); tick(); });
  load();
  timer = setTimeout(tick, RELOAD_MS);
  return section;
}
