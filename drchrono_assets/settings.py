"""Settings read from environment variables, validated once with errors that name the variable.

Secrets are never read here: the API resource takes them through ``dg.EnvVar`` so their
values never reach run configuration or the UI.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path

from upath import UPath

from drchrono_assets.errors import ConfigurationError

DEFAULT_BASE_URL = "https://drchrono.com"
DEFAULT_START_DATE = "2024-01-01"
DEFAULT_TIMEZONE = "UTC"
DEFAULT_DATA_ROOT = "data"


def env(name: str, default: str | None = None) -> str | None:
    """The stripped value of an environment variable, ``default`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def start_date() -> str:
    """``DRCHRONO_START_DATE``: the first partition (``YYYY-MM-DD``)."""
    value = env("DRCHRONO_START_DATE", DEFAULT_START_DATE)
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigurationError(
            f"DRCHRONO_START_DATE={value!r} is not a date in YYYY-MM-DD form"
        ) from None
    return value


def timezone() -> str:
    """``DRCHRONO_TIMEZONE``: the practice's IANA zone; the API's timestamps are local to it."""
    value = env("DRCHRONO_TIMEZONE", DEFAULT_TIMEZONE)
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"DRCHRONO_TIMEZONE={value!r} is not an IANA time zone name (e.g. America/New_York)"
        ) from None
    return value


def data_root() -> str:
    """``DRCHRONO_DATA_ROOT``: where the Parquet datasets go; a local folder or any fsspec URL."""
    return env("DRCHRONO_DATA_ROOT", DEFAULT_DATA_ROOT)


def is_local(location: str | UPath) -> bool:
    """Whether a path or fsspec URL is on this machine's disk (not an object store)."""
    return UPath(location).protocol in ("", "file", "local")


def data_root_is_local() -> bool:
    """Whether ``DRCHRONO_DATA_ROOT`` is a folder on this machine."""
    return is_local(data_root())


def default_token_folder() -> Path:
    """Where token files go when ``DRCHRONO_TOKEN_STORE`` is not set: outside any data root."""
    return Path.home() / ".drchrono_assets"


def _positive_int(name: str, default: int) -> int:
    value = env(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ConfigurationError(f"{name}={value!r} is not a positive whole number")
    return int(value)


def orphan_warning_threshold() -> int:
    """``DRCHRONO_ORPHAN_WARN_THRESHOLD``: orphan rows per day above which a check warns."""
    return _positive_int("DRCHRONO_ORPHAN_WARN_THRESHOLD", 2)


def unbilled_warning_threshold() -> int:
    """``DRCHRONO_UNBILLED_WARN_THRESHOLD``: unbilled visits per day above which a check warns."""
    return _positive_int("DRCHRONO_UNBILLED_WARN_THRESHOLD", 3)
