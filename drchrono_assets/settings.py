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
S3_SSE_ALGORITHMS = ("AES256", "aws:kms")  # SSE-S3, SSE-KMS
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


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


def data_group_read() -> bool:
    """``DRCHRONO_DATA_GROUP_READ``: whether the group of a local data root may read what is
    written under it (files 0440/0640, folders 0750), not only its owner (0400/0600, 0700)."""
    value = env("DRCHRONO_DATA_GROUP_READ", "false")
    if value.lower() not in _TRUE + _FALSE:
        raise ConfigurationError(f"DRCHRONO_DATA_GROUP_READ={value!r} is not true or false")
    return value.lower() in _TRUE


def s3_sse() -> str | None:
    """``DRCHRONO_S3_SSE``: the server-side encryption every write to an ``s3://`` data root
    asks for (``AES256`` or ``aws:kms``); unset, the bucket's default applies."""
    value = env("DRCHRONO_S3_SSE")
    check_s3_sse(value, None)
    return value


def s3_sse_kms_key_id() -> str | None:
    """``DRCHRONO_S3_SSE_KMS_KEY_ID``: the KMS key (id, ARN or alias) of ``aws:kms``
    encryption; unset, S3 uses the account's default key (``aws/s3``)."""
    value = env("DRCHRONO_S3_SSE_KMS_KEY_ID")
    check_s3_sse(s3_sse(), value)
    return value


def check_s3_sse(algorithm: str | None, kms_key_id: str | None) -> None:
    """Raise a ``ConfigurationError`` naming the variables unless ``algorithm`` and
    ``kms_key_id`` make a valid S3 server-side encryption setting."""
    if algorithm is not None and algorithm not in S3_SSE_ALGORITHMS:
        raise ConfigurationError(
            f"DRCHRONO_S3_SSE={algorithm!r} is not one of {', '.join(S3_SSE_ALGORITHMS)}"
        )
    if kms_key_id is not None and algorithm != "aws:kms":
        # A key id alone would silently leave objects under the bucket's default.
        raise ConfigurationError("DRCHRONO_S3_SSE_KMS_KEY_ID needs DRCHRONO_S3_SSE=aws:kms")


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
