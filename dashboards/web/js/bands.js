// Bands that name a value in words and colour it. PM: the US EPA AQI categories (2024
// breakpoints, applied to the shown value as an indication); CO2 and noise: indicative levels.
// Each band: values up to `upTo` (inclusive), its words, its official colour, a line colour
// readable on light and dark backgrounds.

const EPA = [
  ["good", "Good", "#00e400", "#12a312"],
  ["moderate", "Moderate", "#ffff00", "#a08400"],
  ["unhealthy_sensitive", "Unhealthy for sensitive groups", "#ff7e00", "#d06a00"],
  ["unhealthy", "Unhealthy", "#ff0000", "#e8202a"],
  ["very_unhealthy", "Very unhealthy", "#8f3f97", "#a54bb0"],
  ["hazardous", "Hazardous", "#7e0023", "#d8204f"],
];
const epa = (limits) => limits.map((upTo, i) => {
  const [key, name, colour, line] = EPA[i];
  return { upTo, key, name, colour, line };
});
const LEVELS = (names, limits) => names.map((name, i) => ({
  upTo: limits[i], key: `level${i}`, name, colour: EPA[i][2], line: EPA[i][3] }));

export const BANDS = {
  pm2_5: epa([9.0, 35.4, 55.4, 125.4, 225.4, Infinity]),
  pm10: epa([54, 154, 254, 354, 424, Infinity]),
  co2: LEVELS(["Fresh air", "Ventilation advised", "Poor ventilation", "Very poor ventilation"],
    [800, 1000, 1500, Infinity]),
  noise: LEVELS(["Quiet", "Moderate noise", "Loud", "Very loud"], [55, 65, 75, Infinity]),
};

export function bandOf(metric, value) {
  const bands = BANDS[metric];
  if (!bands || value === null || value === undefined || !Number.isFinite(value)) return null;
  return bands.find((b) => value <= b.upTo) || bands[bands.length - 1];
}

// Black or white text, whichever contrasts more with a #rrggbb background (WCAG luminance).
export function textOn(hex) {
  const channel = (i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const lum = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  return (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) ? "#000000" : "#ffffff";
}

export const isColour = (c) => typeof c === "string" && /^#[0-9a-fA-F]{6}$/.test(c);
