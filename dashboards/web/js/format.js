// Shared helpers: building elements (text only, never parsed as HTML) and formatting values.

export const LABELS = {
  temperature: "Temperature", humidity: "Humidity", pressure: "Pressure",
  pm1: "PM1", pm2_5: "PM2.5", pm10: "PM10", co2: "CO₂", noise: "Noise", light: "Light",
  voltage: "Voltage", current: "Current", power: "Power", energy: "Energy",
  state: "Machine", door_open: "Door", motion: "Motion", button: "Button",
};
// Display order of a device's values; metrics not listed follow, by name.
export const ORDER = ["pm2_5", "pm10", "pm1", "co2", "noise", "temperature", "humidity",
  "pressure", "light", "state", "power", "energy", "current", "voltage", "door_open", "motion",
  "button"];
const UNITS = { degC: "°C", "ug/m3": "µg/m³", "%": "%" };
// Fixed decimals per metric, so a refreshed number keeps its width.
const DECIMALS = { temperature: 1, humidity: 0, pressure: 0, pm1: 1, pm2_5: 1, pm10: 0, co2: 0,
  noise: 1, light: 0, voltage: 2, current: 2, power: 0, energy: 0 };
const BINARY = {
  state: ["idle", "running"], door_open: ["closed", "open"],
  motion: ["none", "detected"], button: ["released", "pressed"],
};

// Build an element; children are nodes or strings (added as text nodes, never parsed).
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const label = (metric) => LABELS[metric] || metric;
export const unitText = (unit) => (unit ? UNITS[unit] || unit : "");
export const rank = (metric) => (ORDER.includes(metric) ? ORDER.indexOf(metric) : ORDER.length);
export const byMetric = (a, b) => rank(a) - rank(b) || a.localeCompare(b);

export function formatNumber(metric, value) {
  const digits = DECIMALS[metric] ?? 2;
  return value.toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// {text, unit} of a reading: words for on/off metrics, fixed decimals for the others.
export function formatValue(metric, value, unit) {
  const words = BINARY[metric] || (unit === "bool" ? ["off", "on"] : null);
  if (words) return { text: words[value >= 0.5 ? 1 : 0], unit: "" };
  return { text: formatNumber(metric, value), unit: unitText(unit) };
}

export function ago(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} days ago`;
}

export const seriesKey = (r) => `${r.site}/${r.device}/${r.sensor}/${r.metric}`;
export const deviceKey = (site, device) => `${site}/${device}`;

export async function getJson(path) {
  const response = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
  if (!response.ok) {
    const error = new Error(`${path}: HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined) q.set(k, v);
  return q.toString();
}
