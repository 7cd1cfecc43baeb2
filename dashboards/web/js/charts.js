// Charts (uPlot): downsampled history of one metric, a line per device and sensor, coloured by
// band where the metric has bands, with the bands named in words, the data's licence and a
// CSV link. The canvas is summarised in text for screen readers. Live readings extend the
// chart: into the current bucket (a running mean) or as a new bucket, the oldest falling off.
/* global uPlot */
import { el, getJson, label, unitText, formatNumber, query } from "./format.js";
import { BANDS, bandOf, textOn } from "./bands.js";

export const RANGES = {
  "24h": { start: "-24h", every: "5m", everyS: 300, spanS: 86_400, words: "last 24 hours" },
  "7d": { start: "-7d", every: "1h", everyS: 3600, spanS: 7 * 86_400, words: "last 7 days" },
};
const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
}

// Stroke that changes colour where the line crosses a band limit.
function bandStroke(metric) {
  const bands = BANDS[metric];
  if (!bands) return () => cssVar("--accent");
  return (u) => {
    const { min, max } = u.scales.y;
    if (min === null || max === null || max <= min) return bands[0].line;
    const top = u.valToPos(max, "y", true);
    const bottom = u.valToPos(min, "y", true);
    const g = u.ctx.createLinearGradient(0, bottom, 0, top);
    let low = min;
    for (const b of bands) {
      const from = Math.min(1, Math.max(0, (low - min) / (max - min)));
      const to = Math.min(1, Math.max(0, (Math.min(b.upTo, max) - min) / (max - min)));
      if (to >= from) {
        g.addColorStop(from, b.line);
        g.addColorStop(to, b.line);
      }
      low = b.upTo;
      if (low >= max) break;
    }
    return g;
  };
}

// Faint band stripes behind the lines.
function drawBands(metric) {
  return (u) => {
    const bands = BANDS[metric];
    if (!bands) return;
    const { ctx, bbox } = u;
    const { min, max } = u.scales.y;
    let low = -Infinity;
    ctx.save();
    ctx.globalAlpha = 0.12;
    for (const b of bands) {
      const lo = Math.max(low, min);
      const hi = Math.min(b.upTo, max);
      if (hi > lo) {
        const y1 = u.valToPos(hi, "y", true);
        const y2 = u.valToPos(lo, "y", true);
        ctx.fillStyle = b.colour;
        ctx.fillRect(bbox.left, y1, bbox.width, y2 - y1);
      }
      low = b.upTo;
    }
    ctx.restore();
  };
}

// [{name, points: [[tsSeconds, value]]}] -> uPlot's aligned columns.
function align(series) {
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const columns = series.map((s) => {
    const ys = new Array(xs.length).fill(null);
    for (const [x, y] of s.points) ys[index.get(x)] = y;
    return ys;
  });
  return [xs, ...columns];
}

function bandLegend(metric, unit) {
  const bands = BANDS[metric];
  if (!bands) return null;
  let low = null;
  const items = bands.map((b) => {
    const range = b.upTo === Infinity ? `above ${low}` : low === null ? `up to ${b.upTo}` : `${low}–${b.upTo}`;
    low = b.upTo;
    const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.background = b.colour;
    return el("li", null, swatch, `${b.name} (${range} ${unit})`);
  });
  return el("ul", { class: "band-legend", "aria-label": "Bands" }, items);
}

export function bandChip(metric, value) {
  const band = bandOf(metric, value);
  if (!band) return null;
  const chip = el("span", { class: "chip", "data-band": band.key }, band.name);
  chip.style.background = band.colour;
  chip.style.color = textOn(band.colour);
  return chip;
}

// A live reading into its series: the mean of the current bucket, or a new bucket; points
// older than the chart's span fall off, so a page left open keeps a bounded chart. The hub's
// own last bucket counts as one reading in the running mean (its count is not fetched).
function extend(group, reading, r) {
  const bucket = Math.floor(Date.parse(reading.ts) / 1000 / r.everyS) * r.everyS;
  const points = group.points;
  const last = points[points.length - 1];
  if (last && last[0] === bucket) {
    group.lastCount += 1;
    last[1] += (reading.value - last[1]) / group.lastCount;
  } else if (!last || bucket > last[0]) {
    points.push([bucket, reading.value]);
    group.lastCount = 1;
  } else {
    return false; // an older bucket: shown on the next load
  }
  const oldest = bucket - r.spanS;
  while (points.length && points[0][0] < oldest) points.shift();
  return true;
}

// A <figure> that fills itself: {site, device?, metric, range, licence, names, live}; live:
// {listen(node, fn(reading)), onGap(node, fn())} to follow the stream.
export function chartFigure({ site, device, metric, range, licence, names, live }) {
  const r = RANGES[range];
  const params = { site, device, metric, start: r.start, every: r.every, agg: "mean" };
  const csv = `api/v1/readings?${query({ ...params, format: "csv" })}`;
  const heading = el("h3", null, label(metric));
  const now = el("p", { class: "chart-now" }, "Loading…");
  const plot = el("div", { class: "plot", role: "img", "aria-label": `${label(metric)}, ${r.words}` });
  const summary = el("p", { class: "visually-hidden" });
  const figure = el("figure", { class: "chart", "data-metric": metric, "data-range": range },
    heading, now, plot, summary,
    el("figcaption", null,
      `${r.words[0].toUpperCase()}${r.words.slice(1)}, ${r.every} means. Licence: ${licence}. `,
      el("a", { href: csv, download: `${site}${device ? `-${device}` : ""}-${metric}-${range}.csv` },
        `Download CSV`, el("span", { class: "visually-hidden" }, ` of ${label(metric)}`))));

  let chart = null;
  let groups = new Map();
  let unit = "";
  const describe = () => {
    const series = [...groups.values()];
    const values = series.flatMap((s) => s.points.map((p) => p[1]));
    const last = series[0].points[series[0].points.length - 1][1];
    const lo = Math.min(...values);
    const hi = Math.max(...values);
    now.replaceChildren(...[`Latest ${range === "24h" ? "5-minute" : "hourly"} mean: `,
      el("strong", { class: "num" }, `${formatNumber(metric, last)} ${unit}`), " ",
      bandChip(metric, last)].filter(Boolean));
    summary.textContent = `${label(metric)}, ${r.words}: from ${formatNumber(metric, lo)} to `
      + `${formatNumber(metric, hi)} ${unit}; latest ${formatNumber(metric, last)} ${unit}`
      + `${bandOf(metric, last) ? `, ${bandOf(metric, last).name}` : ""}.`;
  };
  const show = (data) => {
    chart.setData(data);
    plot.dataset.points = String(data[0].length);
  };
  if (live) {
    live.listen(figure, (reading) => {
      if (!chart || reading.site !== site || reading.metric !== metric) return;
      if (device && reading.device !== device) return;
      const group = groups.get(`${reading.device}/${reading.sensor}`);
      if (!group || !extend(group, reading, r)) return; // a new series shows on the next load
      show(align([...groups.values()]));
      describe();
    });
    live.onGap(figure, () => load());
  }

  const load = () => getJson(`api/v1/readings?${query(params)}`).then((answer) => {
    if (chart) { chart.destroy(); chart = null; }
    figure.querySelector(".band-legend")?.remove();
    groups = new Map();
    for (const reading of answer.readings) {
      const key = `${reading.device}/${reading.sensor}`;
      if (!groups.has(key)) groups.set(key, { name: names(reading), points: [], lastCount: 1 });
      groups.get(key).points.push([Date.parse(reading.ts) / 1000, reading.value]);
      unit = unitText(reading.unit);
    }
    if (groups.size === 0) {
      now.textContent = "No readings in this period.";
      plot.remove();
      return;
    }
    if (!plot.isConnected) figure.insertBefore(plot, summary);
    const series = [...groups.values()];
    describe();
    const legend = bandLegend(metric, unit);
    if (legend) figure.insertBefore(legend, figure.querySelector("figcaption"));
    const stroke = bandStroke(metric);
    const axis = { stroke: cssVar("--muted"), grid: { stroke: cssVar("--line"), width: 1 },
      ticks: { stroke: cssVar("--line"), width: 1 } };
    const opts = {
      width: Math.max(240, plot.clientWidth), height: 200,
      series: [{}, ...series.map((s, i) => ({ label: s.name, stroke, width: 2, dash: DASHES[i % DASHES.length],
        spanGaps: false, points: { show: false },
        value: (u, v) => (v === null ? "–" : `${formatNumber(metric, v)} ${unit}`) }))],
      axes: [{ ...axis }, { ...axis, size: 56, values: (u, ticks) => ticks.map((t) => formatNumber(metric, t)) }],
      scales: { y: { range: (u, min, max) => [Math.min(0, min), max > min ? max * 1.05 : min + 1] } },
      hooks: { drawClear: [drawBands(metric)] },
      legend: { show: series.length > 1 },
      cursor: { drag: { x: false, y: false } },
    };
    chart = new uPlot(opts, align(series), plot);
    plot.dataset.points = String(chart.data[0].length);
  }).catch((err) => {
    now.textContent = `Could not load the history (${err.message}).`;
  });
  new ResizeObserver(() => chart?.setSize({ width: Math.max(240, plot.clientWidth), height: 200 }))
    .observe(plot);
  load();
  return figure;
}
