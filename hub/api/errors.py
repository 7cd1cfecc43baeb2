"""Error answers: 422 for bad parameters (named, with the rule), 503 when storage is down."""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fabcity.errors import StorageUnavailable
from hub.api.schemas import ErrorPublic

__all__ = ["ERROR_RESPONSES", "RETRY_AFTER_S", "ApiError", "install_error_handlers"]

RETRY_AFTER_S = 5


class ApiError(ValueError):
    """A query parameter breaks a rule; answers 422."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


def _unprocessable(errors: Sequence[tuple[str, str]]) -> JSONResponse:
    detail = "; ".join(f"{name}: {message}" for name, message in errors)
    body = {"detail": detail,
            "errors": [{"parameter": name, "message": message} for name, message in errors]}
    return JSONResponse(body, status_code=422)


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    loc = [str(part) for part in error.get("loc", ()) if part not in ("query", "path", "body")]
    name = ".".join(loc) or "request"
    message = str(error.get("msg", "invalid value"))
    if "input" in error and error.get("type") != "missing":
        message = f"{message} (got {error['input']!r})"
    return name, message


async def _on_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _unprocessable([(exc.parameter, exc.message)])


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return _unprocessable([_describe(e) for e in exc.errors()])


async def _on_storage_unavailable(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": f"storage unavailable, retry in a few seconds: {exc}", "errors": []},
        status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route the API's own errors, FastAPI's validation errors and storage outages."""
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StorageUnavailable, _on_storage_unavailable)


# For the OpenAPI description of every API route.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"description": "A query parameter is invalid", "model": ErrorPublic},
    429: {"description": "Too many anonymous requests from this address; retry after the "
                         "Retry-After header's seconds, or use an API key", "model": ErrorPublic},
    503: {"description": "Storage unavailable; retry later", "model": ErrorPublic},
}
