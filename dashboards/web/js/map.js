// The map: one keyboard-focusable marker per site (and per device placed elsewhere), coloured
// by air-quality category, named by a permanent label. Works without tiles: the markers stand
// on a plain background; tiles from [open_data] tiles are added when the browser is online.
/* global L */
import { el } from "./format.js";
import { textOn, isColour } from "./bands.js";

const NEUTRAL = "#8a949e";

function settings() {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") || "";
  return { tiles: meta("fabcity-tiles"), attribution: meta("fabcity-tiles-attribution") };
}

// Leaflet puts attributions into the page as HTML: give it escaped text.
const escapeText = (s) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function addTiles(map, container) {
  const { tiles, attribution } = settings();
  if (!tiles || !navigator.onLine) return;
  const layer = L.tileLayer(tiles, {
    maxZoom: 19, attribution: escapeText(attribution), referrerPolicy: "strict-origin",
    crossOrigin: false,
  });
  let failed = 0;
  layer.on("tileerror", () => {
    failed += 1;
    // Tiles that do not load leave the plain background: the markers still work.
    if (failed >= 4) container.classList.add("no-tiles");
  });
  layer.on("tileload", () => container.classList.add("has-tiles"));
  layer.addTo(map);
}

function markerIcon(colour, size, text) {
  const fill = isColour(colour) ? colour : NEUTRAL;
  const dot = el("span", { class: "dot", "aria-hidden": "true" }, text || "");
  dot.style.background = fill;
  dot.style.color = textOn(fill);
  return L.divIcon({ className: "map-marker", html: dot, iconSize: [size, size],
    iconAnchor: [size / 2, size / 2], tooltipAnchor: [size / 2, 0] });
}

// places: [{lat, lon, name, label, colour, short, href, big}]; returns the Leaflet map.
export function drawMap(container, places, reduceMotion) {
  const map = L.map(container, {
    zoomAnimation: !reduceMotion, fadeAnimation: !reduceMotion, markerZoomAnimation: !reduceMotion,
    scrollWheelZoom: false, attributionControl: true,
  });
  map.attributionControl.setPrefix(false);
  // The view first: Leaflet draws markers (and so their elements exist) once it has one.
  const bounds = places.map((p) => [p.lat, p.lon]);
  if (bounds.length === 1) map.setView(bounds[0], 15, { animate: false });
  // More room on the right, where the site names are written.
  else map.fitBounds(bounds, { paddingTopLeft: [40, 40], paddingBottomRight: [170, 40], maxZoom: 16, animate: false });
  addTiles(map, container);
  for (const p of places) {
    const size = p.big ? 30 : 18;
    const marker = L.marker([p.lat, p.lon], {
      icon: markerIcon(p.colour, size, p.big ? p.short : ""), keyboard: true, title: p.label,
      riseOnHover: true, zIndexOffset: p.big ? 1000 : 0,
    });
    marker.on("click", () => { window.location.hash = p.href; });
    marker.addTo(map);
    const node = marker.getElement();
    if (node) {
      node.setAttribute("aria-label", p.label);
      node.setAttribute("role", "link");
      node.dataset.href = p.href;
      node.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          window.location.hash = p.href;
        }
      });
    }
    if (p.big) {
      marker.bindTooltip(el("span", null, p.name), { permanent: true, direction: "right",
        className: "site-label", offset: [4, 0] });
    } else {
      marker.bindTooltip(el("span", null, p.name), { direction: "top", className: "device-label" });
    }
  }
  return map;
}
