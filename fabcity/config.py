"""Configuration: a TOML file, then ``FABCITY_…`` environment overrides, then validation.

Nested keys use a double underscore: ``FABCITY_MQTT__URL`` overrides ``[mqtt] url``. Every
error names the file, the field and the rule, e.g.
``edge.toml: sensors[0].interval_s: Input should be greater than 0``.
"""

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from fabcity.errors import ConfigError

__all__ = [
    "ENV_PREFIX",
    "FileSettings",
    "env_overrides",
    "format_validation_error",
    "load_settings",
    "read_toml",
]

ENV_PREFIX = "FABCITY_"

S = TypeVar("S", bound=BaseModel)


class FileSettings(BaseModel):
    """Base of every role's settings: a TOML file with environment overrides on top.

    (A plain pydantic model plus :func:`env_overrides`: pydantic-settings would cost a
    Raspberry Pi agent about 8 MB of memory for the same behaviour.)
    """

    model_config = ConfigDict(extra="forbid")


def _env_value(name: str, raw: str) -> Any:
    """Scalars stay strings (pydantic converts them); sections and lists are JSON."""
    if raw.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(raw)
        except ValueError as exc:
            key = name[len(ENV_PREFIX):].lower().replace("__", ".")
            raise ConfigError(
                f"environment: {name}: \"{key}\": {exc}: a {ENV_PREFIX}… variable that sets "
                "a whole section or list must hold JSON"
            ) from None
    return raw


def env_overrides(model: type[BaseModel], environ: Mapping[str, str] | None = None,
                  ) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """The ``FABCITY_…`` variables that name a field of ``model``, as nested data.

    ``FABCITY_MQTT__URL=…`` becomes ``{"mqtt": {"url": …}}``; names are case-insensitive.
    Variables whose first part is not a field of ``model`` belong to another role (the hub
    and an edge agent may share an environment) and are ignored. Also returns which
    variable set which path, so errors can name it.
    """
    environ = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    origins: dict[tuple[str, ...], str] = {}
    # Canonical upper-case names are applied last, so they win over a lower-case twin.
    for name, raw in sorted(environ.items(), key=lambda item: (item[0].isupper(), item[0])):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        path = tuple(name[len(ENV_PREFIX):].lower().split("__"))
        if not path[0] or path[0] not in model.model_fields:
            continue
        _check_section(model, path, name, raw)
        node = data
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[path[-1]] = _env_value(name, raw)
            origins[path] = f"environment: {name}"
    return data, origins


def _check_section(model: type[BaseModel], path: tuple[str, ...], name: str, raw: str) -> None:
    """A variable naming a whole section must hold a JSON object; say which key was meant."""
    field = model.model_fields.get(path[0])
    if len(path) != 1 or field is None or raw.lstrip()[:1] in ("{", "["):
        return
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        keys = sorted(annotation.model_fields)
        example = "url" if "url" in keys else keys[0]
        raise ConfigError(
            f"environment: {name}: [{path[0]}] is a section, so this variable must hold a JSON "
            f"object (e.g. {name}='{{\"{example}\": …}}'), not {raw[:40]!r}; to set one key, "
            f"use {name}__{example.upper()}=… (keys: {', '.join(keys)})")


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning every failure into a :class:`ConfigError`."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def format_validation_error(
    source: str, exc: ValidationError, origins: Mapping[tuple[str, ...], str] | None = None,
    prefix: str | None = None,
) -> str:
    """One line per problem: ``source: field.path: message``; a value that came from the
    environment names its variable instead of the file. ``prefix`` is the section the
    validated data came from (``storage``), put in front of every field path."""
    lines = []
    for error in exc.errors():
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and section)"
        loc = tuple(str(part) for part in error["loc"])
        variable = next((var for path, var in (origins or {}).items()
                         if loc[:len(path)] == path), None)
        where = variable or source
        loc_text = _location(error["loc"])
        if prefix:
            loc_text = prefix if loc_text == "(top level)" else f"{prefix}.{loc_text}"
        lines.append(f"{where}: {loc_text}: {message}")
    return "\n".join(lines)


def load_settings(
    model: type[S],
    path: Path | None,
    cli: Mapping[str, tuple[str, Any]] | None = None,
) -> S:
    """Load ``model`` from ``path`` (optional), then environment overrides, then command-line
    options: ``cli`` maps a dotted key (``"api.port"``) to ``(option name, value)``."""
    data = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "configuration"
    overrides, origins = env_overrides(model)
    data = _merge(data, overrides)
    for dotted, (option, value) in (cli or {}).items():
        keys = tuple(dotted.split("."))
        data = _merge(data, _nest(keys, value))
        origins[keys] = f"command line: {option}"
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc, origins)) from None


def _nest(keys: tuple[str, ...], value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        nested = {key: nested}
    return nested
