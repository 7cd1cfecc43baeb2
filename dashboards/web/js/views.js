// The three pages: overview (map + sites), a site, a device. Each returns its root element and
// registers the elements that live readings and air-quality updates refresh in place.
import { el, label, formatValue, ago, byMetric, seriesKey, deviceKey, query, unitText } from "./format.js";
import { textOn, isColour } from "./bands.js";
import { chartFigure, bandChip, RANGES } from "./charts.js";
import { drawMap } from "./map.js";
import { machinesSection } from "./machines.js";

export const deviceName = (d) => (d.meta && d.meta.name) || d.device;
const siteHref = (site) => `#/site/${encodeURIComponent(site)}`;
const deviceHref = (site, device) => `#/device/${encodeURIComponent(site)}/${encodeURIComponent(device)}`;

// Air quality of a device or (worst of its devices) a site, from api/v1/aqi.
export function aqiOf(state, site, device) {
  if (!state.aqi) return null;
  if (device) return state.aqi.get(deviceKey(site, device)) || null;
  let worst = null;
  for (const entry of state.aqi.values()) {
    if (entry.site === site && entry.index !== null && (!worst || entry.index > worst.index)) worst = entry;
  }
  return worst;
}

export function aqiChip(entry) {
  if (!entry || entry.index === null || entry.index === undefined) {
    return el("span", { class: "chip neutral" }, "No air-quality index");
  }
  const chip = el("span", { class: "chip", "data-category": entry.category || "" },
    `AQI ${entry.index}`, entry.label ? ` · ${entry.label}` : "");
  if (isColour(entry.colour)) {
    chip.style.background = entry.colour;
    chip.style.color = textOn(entry.colour);
  }
  return chip;
}

const badge = (stateName) => el("span", { class: `badge ${stateName}` }, stateName);

function readingsOf(state, site, device) {
  return [...state.latest.values()]
    .filter((r) => r.site === site && (!device || r.device === device))
    .sort((a, b) => byMetric(a.metric, b.metric) || a.sensor.localeCompare(b.sensor));
}

// The <dd> of one series; live updates replace its content through state.watch.
export function valueContent(r) {
  const shown = formatValue(r.metric, r.value, r.unit);
  return [el("span", { class: "num" }, shown.text),
    shown.unit ? el("span", { class: "unit" }, shown.unit) : null, bandChip(r.metric, r.value)];
}

function valuesList(state, readings, nowMs) {
  if (readings.length === 0) return el("p", { class: "empty" }, "No readings yet.");
  const perMetric = new Map();
  for (const r of readings) perMetric.set(r.metric, (perMetric.get(r.metric) || 0) + 1);
  const list = el("dl", { class: "values", "aria-live": "polite" });
  for (const r of readings) {
    const dd = el("dd", { "data-site": r.site, "data-device": r.device, "data-sensor": r.sensor,
      "data-metric": r.metric, class: nowMs - Date.parse(r.ts) > 10 * 60_000 ? "stale" : null },
    valueContent(r));
    state.watch(seriesKey(r), dd);
    list.append(el("dt", null, label(r.metric), perMetric.get(r.metric) > 1 ? el("small", null, ` (${r.sensor})`) : null), dd);
  }
  return list;
}

function heading(text) {
  return el("h2", { tabindex: "-1", class: "page-heading" }, text);
}

// What a marker shows with the air quality known now: colour, number and words.
function placeLook(state, p) {
  const aqi = aqiOf(state, p.site, p.device);
  const known = aqi && aqi.index !== null;
  const words = known ? `air quality ${aqi.label || ""} (AQI ${aqi.index})` : "no air-quality index";
  return { colour: aqi ? aqi.colour : null, short: known ? String(aqi.index) : "",
    label: p.big ? `${p.name}: ${words}; open the site` : `${p.name} at ${p.siteName}: ${words}; open the device` };
}

export function overview(state, reduceMotion) {
  const places = [];
  for (const s of state.sites) {
    if (s.location) {
      places.push({ lat: s.location.lat, lon: s.location.lon, name: s.name, big: true,
        site: s.site, device: null, href: siteHref(s.site) });
    }
    for (const d of s.devices) {
      const own = d.location && s.location && (d.location.lat !== s.location.lat || d.location.lon !== s.location.lon);
      if (!own) continue;
      places.push({ lat: d.location.lat, lon: d.location.lon, name: deviceName(d), big: false,
        site: d.site, device: d.device, siteName: s.name, href: deviceHref(d.site, d.device) });
    }
  }
  const mapBox = el("div", { id: "map", class: "map", role: "region", "aria-label": "Map of the sites" });
  const sites = el("ul", { class: "site-list" }, state.sites.map((s) => {
    const chip = aqiChip(aqiOf(state, s.site));
    state.watchAqi(s.site, null, chip);
    return el("li", { class: "site-card", "data-site": s.site },
      el("h3", null, el("a", { href: siteHref(s.site) }, s.name)),
      el("p", { class: "meta" }, [s.kind, `${s.devices.length} device${s.devices.length === 1 ? "" : "s"}`,
        `${s.online} online`].filter(Boolean).join(" · ")),
      chip,
      el("ul", { class: "device-links" }, s.devices.map((d) => el("li", null,
        el("a", { href: deviceHref(d.site, d.device) }, deviceName(d)), " ", badge(d.state)))));
  }));
  const root = el("div", { class: "overview" },
    heading("Sites and air quality"),
    el("div", { class: "overview-grid" },
      el("section", { "aria-labelledby": "map-title" },
        el("h3", { id: "map-title", class: "visually-hidden" }, "Map"),
        places.length ? mapBox : el("p", { class: "empty" }, "No site has a location yet."),
        el("p", { class: "hint" }, "Markers show each site's air-quality index (US EPA); "
          + "grey means no index. Use Tab to reach a marker and Enter to open it.")),
      el("section", { "aria-labelledby": "sites-title" },
        el("h3", { id: "sites-title" }, "Sites"),
        state.sites.length ? sites : el("p", { class: "empty" }, "No site yet."))));
  return { root, mount: () => (places.length
    ? drawMap(mapBox, places, reduceMotion, (p) => placeLook(state, p)) : null) };
}

function chartsSection(state, { site, device, metrics, licence, names }) {
  const box = el("div", { class: "charts" });
  const draw = () => box.replaceChildren(...metrics.map((metric) =>
    chartFigure({ site, device, metric, range: state.range, licence, names, live: state })));
  const radios = Object.entries(RANGES).map(([key, r]) => el("label", null,
    el("input", { type: "radio", name: "range", value: key, checked: state.range === key }), ` ${r.words}`));
  const fieldset = el("fieldset", { class: "range" }, el("legend", null, "Period"), radios);
  fieldset.addEventListener("change", (event) => { state.range = event.target.value; draw(); });
  draw();
  return el("section", { "aria-labelledby": "history-title" },
    el("h2", { id: "history-title" }, "History"), fieldset,
    metrics.length ? box : el("p", { class: "empty" }, "No history yet."));
}

function crumbs(...parts) {
  return el("nav", { "aria-label": "Breadcrumb", class: "crumbs" },
    el("ol", null, parts.map(([text, href]) => el("li", null,
      href ? el("a", { href }, text) : el("span", { "aria-current": "page" }, text)))));
}

export function sitePage(state, site, nowMs) {
  const s = state.sites.find((x) => x.site === site);
  if (!s) return { root: el("div", null, heading("Unknown site"), el("p", null, el("a", { href: "#/" }, "Back to the overview"))) };
  const readings = readingsOf(state, site);
  const metrics = [...new Set(readings.map((r) => r.metric))].sort(byMetric);
  const devices = s.devices.map((d) => {
    const chip = aqiChip(aqiOf(state, d.site, d.device));
    state.watchAqi(d.site, d.device, chip);
    return el("article", { class: "device", "data-site": d.site, "data-device": d.device },
      el("header", null, el("h3", null, el("a", { href: deviceHref(d.site, d.device) }, deviceName(d))), badge(d.state)),
      chip, valuesList(state, readingsOf(state, d.site, d.device), nowMs),
      d.last_seen ? el("p", { class: "seen" }, `Last seen ${ago(nowMs - Date.parse(d.last_seen))}`) : null);
  });
  const byDevice = new Map(s.devices.map((d) => [d.device, deviceName(d)]));
  const root = el("div", { class: "site-page" },
    crumbs(["Overview", "#/"], [s.name, null]), heading(s.name),
    s.description ? el("p", { class: "description" }, s.description) : null,
    el("p", { class: "meta" }, [s.kind, `licence ${s.licence}`].filter(Boolean).join(" · "), " · ",
      el("a", { href: `api/v1/readings?${query({ site, start: "-24h", format: "csv" })}`, download: `${site}-24h.csv` }, "last 24 h (CSV)")),
    el("section", { "aria-labelledby": "devices-title" }, el("h2", { id: "devices-title" }, "Devices"),
      devices.length ? el("div", { class: "devices" }, devices) : el("p", { class: "empty" }, "No device has reported yet.")),
    machinesSection(state, { site, licence: s.licence, deviceName: (device) => byDevice.get(device) || device }),
    chartsSection(state, { site, metrics, licence: s.licence,
      names: (r) => `${byDevice.get(r.device) || r.device} (${r.sensor})` }));
  return { root };
}

function aqiDetail(entry) {
  if (!entry) return null;
  const rows = (entry.pollutants || []).map((p) => el("tr", null,
    el("th", { scope: "row" }, label(p.pollutant)), el("td", { class: "num" }, `${p.concentration} ${unitText(p.unit)}`),
    el("td", null, p.averaging || ""), el("td", { class: "num" }, p.index ?? "–"), el("td", null, p.label || "")));
  return el("section", { "aria-labelledby": "aqi-title" },
    el("h2", { id: "aqi-title" }, "Air quality (US EPA)"), aqiChip(entry),
    entry.pollutant ? el("span", { class: "meta" }, ` driven by ${label(entry.pollutant)}`) : null,
    rows.length ? el("div", { class: "scroll-x", tabindex: "0", role: "region", "aria-label": "Pollutants" },
      el("table", { class: "pollutants" },
        el("thead", null, el("tr", null, ["Pollutant", "Concentration", "Averaging", "Index", "Category"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", null, rows))) : null,
    entry.note ? el("p", { class: "note" }, entry.note) : null);
}

export function devicePage(state, site, device, nowMs) {
  const s = state.sites.find((x) => x.site === site);
  const d = s && s.devices.find((x) => x.device === device);
  if (!d) return { root: el("div", null, heading("Unknown device"), el("p", null, el("a", { href: "#/" }, "Back to the overview"))) };
  const readings = readingsOf(state, site, device);
  const fromMeta = ((d.meta && d.meta.sensors) || []).flatMap((x) => Object.keys(x.metrics || {}));
  const metrics = [...new Set([...readings.map((r) => r.metric), ...fromMeta])].sort(byMetric);
  const kind = d.meta && d.meta.kind;
  const root = el("div", { class: "device-page", "data-site": site, "data-device": device },
    crumbs(["Overview", "#/"], [s.name, siteHref(site)], [deviceName(d), null]), heading(deviceName(d)),
    el("p", { class: "meta" }, `${d.device} at ${s.name}`, kind ? ` · ${kind}` : "", " · ", badge(d.state),
      d.last_seen ? ` · last seen ${ago(nowMs - Date.parse(d.last_seen))}` : ""),
    aqiDetail(aqiOf(state, site, device)),
    el("section", { "aria-labelledby": "now-title", class: "now" }, el("h2", { id: "now-title" }, "Now"),
      valuesList(state, readings, nowMs)),
    chartsSection(state, { site, device, metrics, licence: s.licence, names: (r) => r.sensor }));
  return { root };
}
