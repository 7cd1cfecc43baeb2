"""The hub's HTTP API (FastAPI) and the citizen page it serves."""

from hub.api.app import create_app

__all__ = ["create_app"]
