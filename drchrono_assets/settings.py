"""Settings read from environment variables, validated once with errors that name the variable.

Secrets are never read here: the API resource takes them through ``dg.EnvVar`` so their
values never reach run configuration or the UI.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import re
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
# Exactly a partition key's form: ``date.fromisoformat`` also takes ``20240101`` and
# ``2024-W01-1``, which Dagster's partitions do not.
_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def env(name: str, default: str | None = None) -> str | None:
    """The stripped value of an environment variable, ``default`` when unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or default


def iso_day(text: str) -> dt.date:
    """``text`` as a date if it is exactly ``YYYY-MM-DD``, else ``ValueError`` saying why
    (``not a valid date (month must be in 1..12)``) for a message to quote."""
    match = _ISO_DAY.fullmatch(text)
    if match is None:
        raise ValueError("not a date in YYYY-MM-DD form")
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError as problem:
        raise ValueError(f"not a valid date ({problem})") from None


def practice_today() -> dt.date:
    """Today in ``DRCHRONO_TIMEZONE``: the day a partition is complete after."""
    return dt.datetime.now(zoneinfo.ZoneInfo(timezone())).date()


def start_date() -> str:
    """``DRCHRONO_START_DATE``: the first partition (``YYYY-MM-DD``), no later than today."""
    value = env("DRCHRONO_START_DATE", DEFAULT_START_DATE)
    today = practice_today()
    fix = (
        f"give the first day to materialize as YYYY-MM-DD, up to today ({today}), "
        f"e.g. {DEFAULT_START_DATE}"
    )
    try:
        day = iso_day(value)
    except ValueError as problem:
        raise ConfigurationError(f"DRCHRONO_START_DATE={value!r} is {problem}: {fix}") from None
    if day > today:
        # Dagster would define no partition at all, and say nothing.
        raise ConfigurationError(
            f"DRCHRONO_START_DATE={value!r} is after today ({today} in {timezone()}): {fix}"
        )
    return value


def timezone() -> str:
    """``DRCHRONO_TIMEZONE``: the practice's IANA zone; the API's timestamps are local to it."""
    value = env("DRCHRONO_TIMEZONE", DEFAULT_TIMEZONE)
    if not is_zone(value):
        raise ConfigurationError(
            f"DRCHRONO_TIMEZONE={value!r} is not an IANA time zone name: set it to the "
            f"practice's zone, e.g. America/New_York, or unset it for {DEFAULT_TIMEZONE}"
        )
    return value


def is_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def data_root() -> str:
    """``DRCHRONO_DATA_ROOT``: where the Parquet datasets go; a local folder or any fsspec URL."""
    return env("DRCHRONO_DATA_ROOT", DEFAULT_DATA_ROOT)


def is_local(location: str | UPath) -> bool:
    """Whether a path or fsspec URL is on this machine's disk (not an object store)."""
    return UPath(location).protocol in ("", "file", "local")


def data_group_read() -> bool:
    """``DRCHRONO_DATA_GROUP_READ``: whether the group of a local data root may read what is
    written under it (files 0440/0640, folders 0750), not only its owner (0400/0600, 0700)."""
    value = env("DRCHRONO_DATA_GROUP_READ", "false")
    if value.lower() not in _TRUE + _FALSE:
        raise ConfigurationError(
            f"DRCHRONO_DATA_GROUP_READ={value!r} is not true or false: set it to true or false "
            "(or 1/0, yes/no, on/off), or unset it for false"
        )
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
            f"DRCHRONO_S3_SSE={algorithm!r} is not one of {', '.join(S3_SSE_ALGORITHMS)}: "
            "set it to AES256 (SSE-S3) or aws:kms (SSE-KMS), exactly so spelled, or unset it "
            "for the bucket's default encryption"
        )
    if kms_key_id is not None and algorithm != "aws:kms":
        # A key id alone would silently leave objects under the bucket's default.
        raise ConfigurationError(
            f"DRCHRONO_S3_SSE_KMS_KEY_ID needs DRCHRONO_S3_SSE=aws:kms, but DRCHRONO_S3_SSE is "
            f"{'unset' if algorithm is None else repr(algorithm)}: set DRCHRONO_S3_SSE=aws:kms, "
            "or unset DRCHRONO_S3_SSE_KMS_KEY_ID"
        )


def default_token_folder() -> Path:
    """Where token files go when ``DRCHRONO_TOKEN_STORE`` is not set: outside any data root."""
    return Path.home() / ".drchrono_assets"


@dataclasses.dataclass(frozen=True)
class Allowed:
    """The values a numeric setting may take: whole numbers or any, from ``low`` (excluded
    when ``above``) up to ``high`` if given; ``why`` explains a bound in messages."""

    whole: bool
    low: float
    above: bool = False
    high: float | None = None
    why: str = ""

    def __str__(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        if self.high is not None:
            return f"{kind} from {self.low:g} to {self.high:g}{self.why}"
        return f"{kind} {'above' if self.above else 'of at least'} {self.low:g}{self.why}"

    def parse(self, text: str) -> int | float:
        """``text`` as this setting's number; ``ValueError`` says what is wrong with it."""
        if self.whole:
            if not re.fullmatch(r"[+-]?[0-9]+", text):
                raise ValueError("is not a whole number")
            value: int | float = int(text)
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError("is not a number") from None
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value

    def problem(self, value: float) -> str | None:
        """What puts ``value`` outside the allowed values, or ``None``."""
        if isinstance(value, float) and not math.isfinite(value):  # inf, nan
            return "is not a finite number"
        if self.whole and value != int(value):
            return "is not a whole number"
        if self.above and value <= self.low:
            return f"is not above {self.low:g}"
        if value < self.low:
            return f"is below {self.low:g}"
        if self.high is not None and value > self.high:
            return f"is above {self.high:g}"
        return None


def number(name: str, allowed: Allowed, default: float) -> int | float | None:
    """Variable ``name`` as a number within ``allowed``; ``None`` when unset (``default``
    applies, named in the error)."""
    value = env(name)
    if value is None:
        return None
    try:
        return allowed.parse(value)
    except ValueError as problem:
        raise ConfigurationError(
            f"{name}={value!r} {problem}: set it to {allowed}, or unset it for the "
            f"default {default:g}"
        ) from None


WARN_THRESHOLD = Allowed(whole=True, low=1)
DEFAULT_ORPHAN_WARN_THRESHOLD = 2
DEFAULT_UNBILLED_WARN_THRESHOLD = 3


def _threshold(name: str, default: int) -> int:
    value = number(name, WARN_THRESHOLD, default)
    return default if value is None else int(value)


def orphan_warning_threshold() -> int:
    """``DRCHRONO_ORPHAN_WARN_THRESHOLD``: orphan rows per day above which a check warns."""
    return _threshold("DRCHRONO_ORPHAN_WARN_THRESHOLD", DEFAULT_ORPHAN_WARN_THRESHOLD)


def unbilled_warning_threshold() -> int:
    """``DRCHRONO_UNBILLED_WARN_THRESHOLD``: unbilled visits per day above which a check warns."""
    return _threshold("DRCHRONO_UNBILLED_WARN_THRESHOLD", DEFAULT_UNBILLED_WARN_THRESHOLD)


DEFAULT_SYNC_HOUR = 4  # yesterday is complete and the practice is quiet


def sync_hour() -> int:
    """``DRCHRONO_SYNC_HOUR``: the practice-local hour (0..23) from which the daily sweep of
    yesterday's changes starts."""
    hour = number("DRCHRONO_SYNC_HOUR", Allowed(whole=True, low=0, high=23), DEFAULT_SYNC_HOUR)
    return DEFAULT_SYNC_HOUR if hour is None else int(hour)


DEFAULT_DELETION_CHECK_DAYS = 7


def deletion_check_days() -> int:
    """``DRCHRONO_DELETION_CHECK_DAYS``: every how many days a sweep checks the snapshots kept
    by ``since`` (patients) for records deleted or merged in drchrono."""
    days = number(
        "DRCHRONO_DELETION_CHECK_DAYS", Allowed(whole=True, low=1), DEFAULT_DELETION_CHECK_DAYS
    )
    return DEFAULT_DELETION_CHECK_DAYS if days is None else int(days)


@dataclasses.dataclass(frozen=True)
class PracticeSettings:
    """One practice's settings, read once where the code location is built and passed down
    to what uses them: nothing below reads the environment for them."""

    # None: the practice configured by DRCHRONO_* variables, whose keys have no prefix.
    name: str | None = None
    # The API application it is connected through (a label; practices of one share a
    # request budget); None: its own.
    application: str | None = None
    start_date: str = DEFAULT_START_DATE
    timezone: str = DEFAULT_TIMEZONE
    sync_hour: int = DEFAULT_SYNC_HOUR
    orphan_warning_threshold: int = DEFAULT_ORPHAN_WARN_THRESHOLD
    unbilled_warning_threshold: int = DEFAULT_UNBILLED_WARN_THRESHOLD
    data_root: str = DEFAULT_DATA_ROOT
    data_group_read: bool = False
    s3_sse: str | None = None
    s3_sse_kms_key_id: str | None = None
    # The catalog's resources it ingests (names); None: all of them.
    resources: tuple[str, ...] | None = None
    deletion_check_days: int = DEFAULT_DELETION_CHECK_DAYS

    @classmethod
    def from_env(cls) -> PracticeSettings:
        """Every ``DRCHRONO_*`` practice setting, each checked: a bad one is refused when the
        code location loads (``dagster definitions validate``), naming its variable."""
        return cls(
            start_date=start_date(),
            timezone=timezone(),
            sync_hour=sync_hour(),
            orphan_warning_threshold=orphan_warning_threshold(),
            unbilled_warning_threshold=unbilled_warning_threshold(),
            data_root=data_root(),
            data_group_read=data_group_read(),
            s3_sse=s3_sse(),
            s3_sse_kms_key_id=s3_sse_kms_key_id(),
            deletion_check_days=deletion_check_days(),
        )

    @property
    def data_root_is_local(self) -> bool:
        """Whether the data root is a folder on this machine."""
        return is_local(self.data_root)
