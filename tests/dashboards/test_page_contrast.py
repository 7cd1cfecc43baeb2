"""Every colour pair the citizen page draws text or lines with, against WCAG 2.1 AA.

The colours are read from the page's own files (``style.css`` custom properties of both
schemes, badge backgrounds, the band table in ``bands.js``, the map's neutral marker), so a
colour changed there is checked here: text needs 4.5:1, lines and bars (non-text) 3:1.
"""

import re
from pathlib import Path

import pytest

WEB_DIR = Path(__file__).resolve().parents[2] / "dashboards" / "web"
TEXT_AA = 4.5
GRAPHICS_AA = 3.0
CSS = (WEB_DIR / "style.css").read_text()
BANDS_JS = (WEB_DIR / "js/bands.js").read_text()
MAP_JS = (WEB_DIR / "js/map.js").read_text()
#: The US EPA category colours /api/v1/aqi sends (chips and markers).
AQI_API_COLOURS = ("#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#8F3F97", "#7E0023")


def luminance(hex_colour: str) -> float:
    """WCAG relative luminance of ``#rrggbb``."""
    def channel(i: int) -> float:
        c = int(hex_colour[i:i + 2], 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def text_on(background: str) -> str:
    """What bands.js textOn() picks: black or white, whichever contrasts more."""
    lum = luminance(background)
    return "#000000" if (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) else "#ffffff"


def _expand(colour: str) -> str:
    return "#" + "".join(c * 2 for c in colour[1:]) if len(colour) == 4 else colour


def scheme(block: str) -> dict[str, str]:
    return {name: _expand(value) for name, value in
            re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{3,6})\b", block)}


LIGHT = scheme(CSS.split("@media (prefers-color-scheme: dark)")[0].split("}")[0])
DARK = {**LIGHT, **scheme(CSS.split("@media (prefers-color-scheme: dark)")[1].split("}")[0])}
SCHEMES = {"light": LIGHT, "dark": DARK}
BAND_ROWS = re.findall(r'\["(\w+)", "[^"]+", "(#[0-9a-fA-F]{6})", "(#[0-9a-fA-F]{6})"\]',
                       BANDS_JS)
BADGES = dict(re.findall(r"\.badge\.(\w+) \{ background: (#[0-9a-fA-F]{6}); \}", CSS))
NEUTRAL_MATCH = re.search(r'NEUTRAL = "(#[0-9a-fA-F]{6})"', MAP_JS)
assert NEUTRAL_MATCH is not None
NEUTRAL = NEUTRAL_MATCH.group(1)

#: (foreground variable, background variable): text the stylesheet sets on a background.
TEXT_PAIRS = [("text", "bg"), ("text", "card"), ("muted", "bg"), ("muted", "card"),
              ("accent", "bg"), ("accent", "card"), ("offline", "bg"), ("offline", "card")]
#: Non-text marks on cards: focus ring, machine bars (accent).
GRAPHIC_PAIRS = [("focus", "card"), ("focus", "bg"), ("accent", "card")]


def test_the_stylesheet_and_scripts_were_read() -> None:
    assert {"text", "bg", "card", "muted", "accent", "offline", "focus"} <= set(LIGHT)
    assert DARK["bg"] != LIGHT["bg"]
    assert len(BAND_ROWS) == 6
    assert {"online", "offline", "unknown", "running", "idle"} <= set(BADGES)


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize(("fg", "bg"), TEXT_PAIRS, ids=lambda v: v)
def test_text_colours_meet_aa_in_both_schemes(name: str, fg: str, bg: str) -> None:
    colours = SCHEMES[name]
    ratio = contrast(colours[fg], colours[bg])
    assert ratio >= TEXT_AA, f"{name}: {fg} {colours[fg]} on {bg} {colours[bg]}: {ratio:.2f}:1"


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize(("fg", "bg"), GRAPHIC_PAIRS, ids=lambda v: v)
def test_focus_ring_and_bars_meet_the_non_text_ratio(name: str, fg: str, bg: str) -> None:
    colours = SCHEMES[name]
    assert contrast(colours[fg], colours[bg]) >= GRAPHICS_AA


@pytest.mark.parametrize("badge", sorted(BADGES))
def test_badges_white_text_meets_aa(badge: str) -> None:
    assert ".badge { " in CSS and "color: #fff;" in CSS.split(".badge { ")[1].split("}")[0]
    assert contrast("#ffffff", BADGES[badge]) >= TEXT_AA, badge


@pytest.mark.parametrize("background", sorted({c for _, c, _ in BAND_ROWS}
                                              | {c.lower() for c in AQI_API_COLOURS}
                                              | {NEUTRAL}))
def test_chip_and_marker_text_picked_for_each_band_colour_meets_aa(background: str) -> None:
    assert contrast(text_on(background), background) >= TEXT_AA, background


@pytest.mark.parametrize("name", SCHEMES)
@pytest.mark.parametrize(("band", "line"), [(k, line) for k, _, line in BAND_ROWS],
                         ids=lambda v: v)
def test_chart_line_colours_stand_out_from_the_card_in_both_schemes(
        name: str, band: str, line: str) -> None:
    ratio = contrast(line, SCHEMES[name]["card"])
    assert ratio >= GRAPHICS_AA, f"{band} line {line} on {name} card: {ratio:.2f}:1"


def test_contrast_is_computed_as_wcag_defines_it() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert text_on("#ffff00") == "#000000" and text_on("#7e0023") == "#ffffff"
