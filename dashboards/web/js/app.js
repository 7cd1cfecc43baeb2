// fabcity citizen dashboard: hash routes (#/, #/site/<id>, #/device/<site>/<device>), data from
// the open-data API, live values from the event stream (or polling), air quality from api/v1/aqi.
// Device-provided strings only ever reach the page as text (see format.js: el()).
import { getJson, seriesKey, deviceKey } from "./format.js";
import { overview, sitePage, devicePage, valueContent, aqiChip, aqiOf } from "./views.js";
import { startLive } from "./live.js";

const SITES_REFRESH_MS = 60_000;
// The AQI every minute; `/?aqi_refresh_s=N` sets data-aqi-refresh-s on <html> (tests, kiosks).
const AQI_REFRESH_MS = 1000 * (Number(document.documentElement.dataset.aqiRefreshS) || 60);
// A pollutant reading arriving live asks for the AQI again, at most this often.
const AQI_AFTER_READING_MS = 15_000;
const AQI_METRICS = new Set(["pm2_5", "pm10", "o3", "no2", "co", "so2"]);
const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

const state = {
  sites: [],
  latest: new Map(),
  aqi: null, // Map deviceKey -> device entry; null while the hub has no api/v1/aqi
  range: "24h",
  clockSkewMs: 0, // hub clock - browser clock
  watchers: new Map(),
  aqiWatchers: [],
  listeners: [], // {node, fn}: fn(reading) for every live reading while node is on the page
  reloaders: [], // {node, fn}: fn() after the stream announced a gap
  map: null, // {map, refresh()} of the overview
  watch(key, node) {
    if (!this.watchers.has(key)) this.watchers.set(key, []);
    this.watchers.get(key).push(node);
  },
  watchAqi(site, device, node) { this.aqiWatchers.push({ site, device, node }); },
  listen(node, fn) { this.listeners.push({ node, fn }); },
  onGap(node, fn) { this.reloaders.push({ node, fn }); },
};
const connected = (list) => list.filter((w) => w.node.isConnected);
const hubNow = () => Date.now() + state.clockSkewMs;

function setStatus(text, isError) {
  const status = document.getElementById("status");
  if (status.textContent !== text) status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function onReading(r) {
  const key = seriesKey(r);
  const known = state.latest.get(key);
  if (known && Date.parse(known.ts) >= Date.parse(r.ts)) return;
  state.latest.set(key, r);
  if (AQI_METRICS.has(r.metric)) aqiSoon();
  state.listeners = connected(state.listeners);
  for (const w of state.listeners) w.fn(r);
  for (const node of state.watchers.get(key) || []) {
    node.replaceChildren(...valueContent(r).filter(Boolean));
    node.classList.remove("stale");
    node.classList.remove("updated");
    void node.offsetWidth; // restart the highlight animation
    node.classList.add("updated");
  }
}

const MODES = {
  live: ["Live: values update as readings arrive.", false],
  polling: ["Values update every 10 seconds.", false],
  offline: ["Cannot reach the hub; retrying…", true],
};
function onMode(mode, detail) {
  const [text, isError] = MODES[mode];
  setStatus(detail ? `${text} (${detail})` : text, isError);
}

async function loadSites() {
  const [sites, latest] = await Promise.all([getJson("api/v1/sites"), getJson("api/v1/latest")]);
  state.sites = sites.sites;
  state.clockSkewMs = (Date.parse(latest.now) || Date.now()) - Date.now();
  for (const r of latest.readings) onReading(r);
}

let aqiPending = null;
function aqiSoon() {
  if (aqiPending === null) aqiPending = setTimeout(() => { aqiPending = null; loadAqi(); }, AQI_AFTER_READING_MS);
}

// The stream could not replay everything missed: say so, and reload what shows history.
function onGap(gap) {
  const from = new Date(gap.from).toLocaleTimeString();
  const to = new Date(gap.to).toLocaleTimeString();
  setStatus(`Readings from ${from} to ${to} were missed live; charts reloaded.`, false);
  state.reloaders = connected(state.reloaders);
  for (const w of state.reloaders) w.fn();
  loadSites().catch(() => {});
}

async function loadAqi() {
  try {
    const answer = await getJson("api/v1/aqi?standard=us-epa");
    state.aqi = new Map(answer.devices.map((d) => [deviceKey(d.site, d.device), d]));
  } catch (err) {
    state.aqi = null; // not on this hub yet (404) or failing: neutral colours, keep going
  }
  for (const w of state.aqiWatchers) {
    if (!w.node.isConnected) continue;
    const chip = aqiChip(aqiOf(state, w.site, w.device));
    w.node.replaceWith(chip);
    w.node = chip;
  }
  if (state.map) state.map.refresh();
}

function route() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "site" && parts[1]) return { view: "site", site: parts[1] };
  if (parts[0] === "device" && parts[1] && parts[2]) return { view: "device", site: parts[1], device: parts[2] };
  return { view: "overview" };
}

function render(moveFocus) {
  const r = route();
  state.watchers = new Map();
  state.aqiWatchers = [];
  state.listeners = [];
  state.reloaders = [];
  if (state.map) { state.map.map.remove(); state.map = null; }
  const page = r.view === "site" ? sitePage(state, r.site, hubNow())
    : r.view === "device" ? devicePage(state, r.site, r.device, hubNow())
      : overview(state, reduceMotion);
  const main = document.getElementById("view");
  main.replaceChildren(page.root);
  if (page.mount) state.map = page.mount();
  const title = page.root.querySelector(".page-heading");
  document.title = `${title ? title.textContent : "fabcity"} · fabcity`;
  if (moveFocus && title) {
    title.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

async function start() {
  try {
    await Promise.all([loadSites(), loadAqi()]);
  } catch (err) {
    setStatus(`Cannot reach the hub (${err.message}); retrying…`, true);
    setTimeout(start, 5000);
    return;
  }
  render(false);
  window.addEventListener("hashchange", () => render(true));
  startLive({ reading: onReading, mode: onMode, gap: onGap });
  // Sites, devices and their states change slowly: refresh them, and the air quality, now and then.
  setInterval(() => loadSites().catch(() => {}), SITES_REFRESH_MS);
  setInterval(loadAqi, AQI_REFRESH_MS);
}

start();
