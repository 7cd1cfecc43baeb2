"""``GET /``: the citizen page (static HTML, CSS and JS from ``dashboards/web``).

The page is static files plus three settings written into ``index.html`` when it is served: the
map tile URL, its credit and the credit's link (``[open_data] tiles``). The
Content-Security-Policy lets images come from the tile host only when tiles are on; everything
else comes from this hub.
"""

import html
from functools import lru_cache
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

import dashboards
from hub.api.deps import ContextDep
from hub.config import OpenDataConfig

WEB_DIR = Path(dashboards.__file__).resolve().parent / "web"
STATIC_PREFIX = "/static"
#: Placeholders in index.html, replaced by the (HTML-escaped) settings.
TILES_MARK = 'name="fabcity-tiles" content=""'
ATTRIBUTION_MARK = 'name="fabcity-tiles-attribution" content=""'
ATTRIBUTION_URL_MARK = 'name="fabcity-tiles-attribution-url" content=""'
HTML_MARK = '<html lang="en">'

router = APIRouter(tags=["page"])


def tile_source(tiles: str) -> str | None:
    """The CSP source of a tile URL template: scheme and host, ``{s}.`` becoming ``*.``."""
    if not tiles:
        return None
    parts = urlsplit(tiles.replace("{s}.", "subdomain."))
    host = parts.netloc.replace("subdomain.", "*.", 1) if "{s}." in tiles else parts.netloc
    return f"{parts.scheme}://{host}"


def security_headers(open_data: OpenDataConfig) -> dict[str, str]:
    """The page loads only its own files, talks only to this hub, and shows tiles if set."""
    images = " ".join(filter(None, ("'self' data:", tile_source(open_data.tiles))))
    return {
        "Content-Security-Policy": f"default-src 'self'; img-src {images}; "
                                   "frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


@lru_cache(maxsize=1)
def _template() -> str:
    return (WEB_DIR / "index.html").read_text(encoding="utf-8")


def render_index(open_data: OpenDataConfig, aqi_refresh_s: int | None = None) -> str:
    """index.html with the tile settings filled in (escaped: they come from hub.toml), and the
    air-quality refresh period when one was asked for (``data-aqi-refresh-s``)."""
    page = _template()
    if aqi_refresh_s is not None:
        page = page.replace(HTML_MARK, f'{HTML_MARK[:-1]} data-aqi-refresh-s="{aqi_refresh_s}">')
    page = page.replace(TILES_MARK, TILES_MARK[:-1] + html.escape(open_data.tiles) + '"')
    page = page.replace(ATTRIBUTION_MARK,
                        ATTRIBUTION_MARK[:-1] + html.escape(open_data.tiles_attribution) + '"')
    return page.replace(ATTRIBUTION_URL_MARK, ATTRIBUTION_URL_MARK[:-1]
                        + html.escape(open_data.tiles_attribution_url) + '"')


@router.get("/", include_in_schema=False)
def index(
    ctx: ContextDep,
    aqi_refresh_s: Annotated[int | None, Query(
        ge=1, le=3600, description="seconds between air-quality refreshes (default 60)")] = None,
) -> HTMLResponse:
    """The citizen dashboard: map, sites, devices, charts and live values (hash routes)."""
    return HTMLResponse(render_index(ctx.open_data, aqi_refresh_s),
                        headers={**security_headers(ctx.open_data), "Cache-Control": "no-cache"})
