// The map: one keyboard-focusable marker per site (and per device placed elsewhere), coloured
// by air-quality category, named by a permanent label. Works without tiles: the markers stand
// on a plain background; tiles from [open_data] tiles are added when the browser is online.
// Markers are re-coloured in place when the air quality changes (refresh()).
/* global L */
import { el } from "./format.js";
import { textOn, isColour } from "./bands.js";

const NEUTRAL = "#8a949e";

function settings() {
  const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.getAttribute("content") || "";
  return { tiles: meta("fabcity-tiles"), attribution: meta("fabcity-tiles-attribution"),
    attributionUrl: meta("fabcity-tiles-attribution-url") };
}

// The tile credit, built as elements (Leaflet's own control takes HTML strings): the credit's
// text, a link to the tile data's copyright page when one is set.
function creditControl({ attribution, attributionUrl }) {
  const Credit = L.Control.extend({
    onAdd() {
      const box = el("div", { class: "leaflet-control-attribution leaflet-control" });
      const url = /^https?:\/\//.test(attributionUrl) ? attributionUrl : "";
      box.append(url ? el("a", { href: url, rel: "noopener", target: "_blank" }, attribution) : attribution);
      L.DomEvent.disableClickPropagation(box);
      return box;
    },
  });
  return new Credit({ position: "bottomright" });
}

function addTiles(map, container) {
  const config = settings();
  const { tiles } = config;
  if (!tiles || !navigator.onLine) return;
  const layer = L.tileLayer(tiles, { maxZoom: 19, referrerPolicy: "strict-origin", crossOrigin: false });
  if (config.attribution) creditControl(config).addTo(map);
  let failed = 0;
  layer.on("tileerror", () => {
    failed += 1;
    // Tiles that do not load leave the plain background: the markers still work.
    if (failed >= 4) container.classList.add("no-tiles");
  });
  layer.on("tileload", () => container.classList.add("has-tiles"));
  layer.addTo(map);
}

function paint(dot, colour, text) {
  const fill = isColour(colour) ? colour : NEUTRAL;
  dot.style.background = fill;
  dot.style.color = textOn(fill);
  dot.dataset.colour = fill.toLowerCase();
  if (dot.textContent !== (text || "")) dot.textContent = text || "";
}

function markerIcon(colour, size, text) {
  const dot = el("span", { class: "dot", "aria-hidden": "true" });
  paint(dot, colour, text);
  return L.divIcon({ className: "map-marker", html: dot, iconSize: [size, size],
    iconAnchor: [size / 2, size / 2], tooltipAnchor: [size / 2, 0] });
}

// Name, label and colour of a marker now: marker's text (big ones), aria-label, colour.
function applyLook(node, p, look) {
  const { colour, short, label } = look(p);
  const dot = node.querySelector(".dot");
  if (dot) paint(dot, colour, p.big ? short : "");
  node.setAttribute("aria-label", label);
  node.setAttribute("title", label);
}

// places: [{lat, lon, name, href, big, site, device}]; look(place) -> {colour, short, label}.
// Returns {map, refresh()}: refresh() applies look() again to every marker.
export function drawMap(container, places, reduceMotion, look) {
  const map = L.map(container, {
    zoomAnimation: !reduceMotion, fadeAnimation: !reduceMotion, markerZoomAnimation: !reduceMotion,
    scrollWheelZoom: false, attributionControl: false,
  });
  // The view first: Leaflet draws markers (and so their elements exist) once it has one.
  const bounds = places.map((p) => [p.lat, p.lon]);
  if (bounds.length === 1) map.setView(bounds[0], 15, { animate: false });
  // More room on the right, where the site names are written.
  else map.fitBounds(bounds, { paddingTopLeft: [40, 40], paddingBottomRight: [170, 40], maxZoom: 16, animate: false });
  addTiles(map, container);
  const drawn = [];
  for (const p of places) {
    const size = p.big ? 30 : 18;
    const first = look(p);
    const marker = L.marker([p.lat, p.lon], {
      icon: markerIcon(first.colour, size, p.big ? first.short : ""), keyboard: true,
      title: first.label, riseOnHover: true, zIndexOffset: p.big ? 1000 : 0,
    });
    marker.on("click", () => { window.location.hash = p.href; });
    marker.addTo(map);
    const node = marker.getElement();
    if (node) {
      drawn.push([node, p]);
      node.setAttribute("aria-label", first.label);
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
  return { map, refresh: () => drawn.forEach(([node, p]) => applyLook(node, p, look)) };
}
