"""Configuration: a TOML file, then ``FABCITY_…`` environment overrides, then validation.

Nested keys use a double underscore: ``FABCITY_MQTT__URL`` overrides ``[mqtt] url``. Every
error names the file, the field and the rule, e.g.
``edge.toml: sensors[0].interval_s: Input should be greater than 0``.
"""

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from fabcity.errors import ConfigError

__all__ = ["ENV_PREFIX", "FileSettings", "format_validation_error", "load_settings", "read_toml"]

ENV_PREFIX = "FABCITY_"

S = TypeVar("S", bound=BaseModel)


class FileSettings(BaseSettings):
    """Base of every role's settings: environment variables win over the TOML file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        nested_model_default_partial_update=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


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


def format_validation_error(source: str, exc: ValidationError) -> str:
    """One line per problem: ``source: field.path: message``."""
    lines = []
    for error in exc.errors():
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and section)"
        lines.append(f"{source}: {_location(error['loc'])}: {message}")
    return "\n".join(lines)


def load_settings(model: type[S], path: Path | None) -> S:
    """Load ``model`` from ``path`` (optional) with environment overrides applied."""
    data = read_toml(path) if path is not None else {}
    source = str(path) if path is not None else "configuration"
    try:
        return model(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(source, exc)) from None
    except SettingsError as exc:  # e.g. FABCITY_MQTT='not json'
        raise ConfigError(f"environment: {exc}: a {ENV_PREFIX}… variable that sets a whole "
                          "section or list must hold JSON") from None
