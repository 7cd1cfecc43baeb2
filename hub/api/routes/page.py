"""``GET /``: the citizen page (static HTML, CSS and JS from ``dashboards/web``)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

import dashboards

WEB_DIR = Path(dashboards.__file__).resolve().parent / "web"
STATIC_PREFIX = "/static"

# The page loads only its own files and talks only to this hub.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(tags=["page"])


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The live page: every device grouped by site, refreshed every few seconds."""
    return FileResponse(WEB_DIR / "index.html", media_type="text/html",
                        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
