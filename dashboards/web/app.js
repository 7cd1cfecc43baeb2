// fabcity live page: polls the open-data API and redraws the devices, grouped by site.
// Device-provided strings only ever reach the page through textContent, never as HTML.
"use strict";

const POLL_MS = 5000;
const STALE_MS = 10 * 60 * 1000;

const LABELS = {
  temperature: "Temperature", humidity: "Humidity", pressure: "Pressure",
  pm1: "PM1", pm2_5: "PM2.5", pm10: "PM10", co2: "CO₂", noise: "Noise", light: "Light",
  voltage: "Voltage", current: "Current", power: "Power", energy: "Energy",
  state: "Machine", door_open: "Door", motion: "Motion", button: "Button",
};
// Display order of the values of a device; metrics not listed follow, by name.
const ORDER = ["state", "power", "energy", "current", "voltage", "door_open", "motion", "button",
  "pm2_5", "pm10", "pm1", "co2", "temperature", "humidity", "pressure", "noise", "light"];
const UNITS = { degC: "°C", "ug/m3": "µg/m³", "%": "%" };
const BINARY = {
  state: ["idle", "running"], door_open: ["closed", "open"],
  motion: ["none", "detected"], button: ["released", "pressed"],
};

// Build an element; children are nodes or strings (added as text, never parsed).
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function formatNumber(value) {
  const abs = Math.abs(value);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : 2;
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}

function formatValue(reading) {
  const words = BINARY[reading.metric] || (reading.unit === "bool" ? ["off", "on"] : null);
  if (words) return { text: words[reading.value >= 0.5 ? 1 : 0], unit: "" };
  const unit = reading.unit ? (UNITS[reading.unit] || reading.unit) : "";
  return { text: formatNumber(reading.value), unit };
}

function ago(ms) {
  if (ms < 0) ms = 0;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} days ago`;
}

async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// Merge devices and their latest readings into {site: {device: {info, readings}}}.
function group(devices, readings) {
  const sites = new Map();
  const slot = (site, device) => {
    if (!sites.has(site)) sites.set(site, new Map());
    const bySite = sites.get(site);
    if (!bySite.has(device)) bySite.set(device, { info: null, readings: [] });
    return bySite.get(device);
  };
  for (const d of devices) slot(d.site, d.device).info = d;
  for (const r of readings) slot(r.site, r.device).readings.push(r);
  const rank = (m) => (ORDER.includes(m) ? ORDER.indexOf(m) : ORDER.length);
  for (const bySite of sites.values()) {
    for (const entry of bySite.values()) {
      entry.readings.sort((a, b) => rank(a.metric) - rank(b.metric)
        || a.metric.localeCompare(b.metric) || a.sensor.localeCompare(b.sensor));
    }
  }
  return new Map([...sites.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

function deviceCard(site, device, entry, nowMs) {
  const info = entry.info || { state: "unknown", last_seen: null, meta: null };
  const meta = info.meta || {};
  const title = meta.name || device;
  const idLine = [meta.name ? device : null, meta.kind].filter(Boolean).join(" · ");
  const card = el("article", { class: "device", "data-site": site, "data-device": device },
    el("header", null,
      el("div", null, el("h3", null, title), idLine ? el("div", { class: "device-id" }, idLine) : null),
      el("span", { class: `badge ${info.state}` }, info.state)));

  if (entry.readings.length === 0) {
    card.append(el("p", { class: "empty" }, "No readings yet"));
  } else {
    const metricCount = new Map();
    for (const r of entry.readings) metricCount.set(r.metric, (metricCount.get(r.metric) || 0) + 1);
    const list = el("dl", { class: "values" });
    for (const r of entry.readings) {
      const label = LABELS[r.metric] || r.metric;
      const shown = formatValue(r);
      const age = nowMs - Date.parse(r.ts);
      const stale = age > STALE_MS;
      list.append(
        el("dt", null, label, metricCount.get(r.metric) > 1 ? el("small", null, ` (${r.sensor})`) : null),
        el("dd", { class: stale ? "stale" : null, "data-metric": r.metric, "data-sensor": r.sensor,
                   title: `${r.sensor}/${r.metric} at ${new Date(r.ts).toLocaleString()}` },
          shown.text, shown.unit ? el("span", { class: "unit" }, shown.unit) : null));
    }
    card.append(list);
  }
  if (info.last_seen) {
    card.append(el("p", { class: "seen" }, `Last seen ${ago(nowMs - Date.parse(info.last_seen))}`));
  }
  return card;
}

function siteSection(site, devices, nowMs) {
  const entries = [...devices.entries()].sort(([a], [b]) => a.localeCompare(b));
  const online = entries.filter(([, e]) => e.info && e.info.state === "online").length;
  const csv = `api/v1/readings?site=${encodeURIComponent(site)}&start=-24h&format=csv`;
  const count = `${entries.length} device${entries.length === 1 ? "" : "s"} · ${online} online`;
  return el("section", { class: "site", "data-site": site },
    el("h2", null, site, el("span", { class: "count" }, count),
      el("a", { href: csv, download: `${site}-24h.csv` }, "last 24 h (CSV)")),
    el("div", { class: "devices" }, ...entries.map(([device, e]) => deviceCard(site, device, e, nowMs))));
}

function setStatus(text, isError) {
  const status = document.getElementById("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

async function refresh() {
  const [devices, latest] = await Promise.all([getJson("api/v1/devices"), getJson("api/v1/latest")]);
  // Ages use the hub's clock, so a phone with a wrong clock still shows them right.
  const nowMs = Date.parse(latest.now) || Date.now();
  const sites = group(devices.devices, latest.readings);
  const main = document.getElementById("sites");
  if (sites.size === 0) {
    main.replaceChildren(el("p", { class: "empty" }, "No device has reported yet."));
  } else {
    main.replaceChildren(...[...sites.entries()].map(([site, d]) => siteSection(site, d, nowMs)));
  }
  const online = devices.devices.filter((d) => d.state === "online").length;
  setStatus(`Updated ${new Date().toLocaleTimeString()} · ${devices.count} devices, ${online} online`);
}

async function loop() {
  try {
    await refresh();
  } catch (err) {
    setStatus(`Cannot reach the hub (${err.message}); retrying…`, true);
  }
  setTimeout(loop, POLL_MS);
}

document.addEventListener("DOMContentLoaded", loop);
