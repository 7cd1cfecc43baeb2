"""The hub's FastAPI application: open-data API, Prometheus metrics, the citizen page."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from fabcity import __version__
from hub.api.caching import HttpCaching
from hub.api.deps import reject_unknown_parameters
from hub.api.errors import install_error_handlers
from hub.api.limits import storage_slot
from hub.api.routes import admin as admin_routes
from hub.api.routes import aqi, climate, devices, health, latest, metrics, page, readings, sites
from hub.api.routes import stream as live_stream
from hub.api.security import AccessLimits
from hub.api.shared_answers import GZIP_LEVEL, GZIP_MIN_BYTES
from hub.context import HubContext

__all__ = ["create_app"]

DESCRIPTION = """Open data from fablab and city sensors.

Times are RFC 3339 UTC; names follow the wire contract (`site`, `device`:
`[a-z0-9][a-z0-9_-]{0,63}`; `sensor`, `metric`: `[a-z][a-z0-9_]{0,63}`). A bad parameter
answers 422 naming it and the rule; an unavailable storage answers 503.
"""
DOCS_STATIC = "/static-docs"


def _offline_docs_dir() -> Path | None:
    """Swagger UI files shipped by ``fastapi-offline``, so /docs works without the internet."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    static = Path(fastapi_offline.__file__).parent / "static"
    return static if (static / "swagger-ui-bundle.js").is_file() else None


def _mount_docs(app: FastAPI) -> None:
    static = _offline_docs_dir()
    if static is None:
        return
    app.mount(DOCS_STATIC, StaticFiles(directory=static), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="openapi.json", title=f"{app.title} - API docs",
            swagger_js_url=f"{DOCS_STATIC[1:]}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC[1:]}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC[1:]}/favicon.png",
        )


def create_app(
    ctx: HubContext,
    lifespan: Callable[[FastAPI], AbstractAsyncContextManager[None]] | None = None,
) -> FastAPI:
    """Build the app around a running hub's storage, registry, metrics and MQTT probe
    (``lifespan``: what the server runs at start and stop, e.g. an API worker's hub parts)."""
    offline_docs = _offline_docs_dir() is not None
    app = FastAPI(
        title="fabcity hub",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None if offline_docs else "/docs",
        redoc_url=None,
        dependencies=[Depends(reject_unknown_parameters), Depends(storage_slot)],
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_error_handlers(app)
    # Rate limits for anonymous /api/ requests and a body cap (innermost: answers carry CORS).
    app.add_middleware(AccessLimits, ctx=ctx)
    # Open data: any web page may read it.
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET"])
    app.add_middleware(HttpCaching, ctx=ctx)  # ETag, Cache-Control, licence headers
    # The page, its libraries and JSON/CSV answers travel gzipped (Starlette skips event streams).
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)
    for module in (health, sites, devices, latest, readings, aqi, climate, metrics, page):
        app.include_router(module.router)
    app.include_router(live_stream.router)
    app.include_router(admin_routes.router)
    app.mount(page.STATIC_PREFIX, StaticFiles(directory=page.WEB_DIR), name="static")
    _mount_docs(app)
    _document_rate_limit(app)
    return app


def _document_rate_limit(app: FastAPI) -> None:
    """Every ``/api/`` operation may answer 429 (the per-address limit on anonymous requests,
    a middleware the routes never see): say so in the OpenAPI document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for path, operations in schema.get("paths", {}).items():
            if not path.startswith("/api/"):
                continue
            for operation in operations.values():
                operation.setdefault("responses", {}).setdefault("429", {
                    "description": "Too many anonymous requests from this address; retry "
                                   "after Retry-After seconds, or use an API key",
                    "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/ErrorPublic"}}}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
