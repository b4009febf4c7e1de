"""The client's settings: how to reach drchrono and how hard to push it, from ``DRCHRONO_*``
variables or the Dagster resource's fields, and where the token store is. The client reads
nothing else: whatever comes from the environment is read here or by its caller."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from pathlib import Path

import pydantic
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.api.token_store import is_database_url
from drchrono_assets.errors import ConfigurationError

BASE_URL_VARIABLE = "DRCHRONO_BASE_URL"
# The Dagster resource takes these as EnvVar references so values never reach run config or
# the UI. A database URL in DRCHRONO_TOKEN_STORE carries a password.
SECRET_VARIABLES = {
    "client_id": "DRCHRONO_CLIENT_ID",
    "client_secret": "DRCHRONO_CLIENT_SECRET",
    "refresh_token": "DRCHRONO_REFRESH_TOKEN",
    "token_store": "DRCHRONO_TOKEN_STORE",
}
TUNING_VARIABLES = {
    "api_version": "DRCHRONO_API_VERSION",
    "page_size": "DRCHRONO_PAGE_SIZE",
    "requests_per_hour": "DRCHRONO_REQUESTS_PER_HOUR",
    "requests_per_second": "DRCHRONO_REQUESTS_PER_SECOND",
    "request_budget_window_seconds": "DRCHRONO_REQUEST_BUDGET_WINDOW_SECONDS",
    "backoff_initial_seconds": "DRCHRONO_RETRY_BACKOFF_SECONDS",
}
REQUIRED = ("client_id", "client_secret")
_SECONDS = settings.Allowed(whole=False, low=0, above=True)
# The values each numeric field may take, checked when its variable is read and again when
# settings are made: a value from Dagster config never passes through the variable.
ALLOWED = {
    "page_size": settings.Allowed(whole=True, low=1, high=250, why=" (the API's largest page)"),
    "timeout_seconds": _SECONDS,
    "max_attempts": settings.Allowed(whole=True, low=1),
    # 0 would retry at once and pause nobody after a 429.
    "backoff_initial_seconds": _SECONDS,
    "backoff_max_seconds": _SECONDS,
    "requests_per_hour": settings.Allowed(whole=True, low=1),
    # The budget admits whole requests a second (rate_budget.RequestBudget): 0.5 would be 1.
    "requests_per_second": settings.Allowed(
        whole=False, low=1, why=" (the budget admits whole requests a second)"
    ),
    "request_budget_window_seconds": _SECONDS,
    "max_parallel_requests": settings.Allowed(whole=True, low=1),
}


# A pydantic dataclass: values read from the environment are strings, converted and checked here.
@pydantic.dataclasses.dataclass(frozen=True)
class ClientSettings:
    """How to reach drchrono and how hard to push it. ``repr`` never shows a secret."""

    base_url: str = settings.DEFAULT_BASE_URL
    client_id: str | None = None
    client_secret: str | None = dataclasses.field(default=None, repr=False)
    # The first refresh token; rotated ones live in the token store.
    refresh_token: str | None = dataclasses.field(default=None, repr=False)
    api_version: str | None = None
    # A file path or a ``postgresql+psycopg2://`` URL (with a password: kept out of ``repr``);
    # None until ``resolve_token_store`` picks the default file (the client refuses None).
    token_store: str | None = dataclasses.field(default=None, repr=False)
    # The practice's data root, which a token file may not be inside (None: not checked).
    data_root: str | None = None
    # The practice whose tokens these are, when an application serves several: each has its
    # own chain of refresh tokens; the request ledger stays one per application.
    practice: str | None = None
    page_size: int = 250
    timeout_seconds: float = 30.0
    max_attempts: int = 10
    backoff_initial_seconds: float = 2.0
    backoff_max_seconds: float = 120.0
    requests_per_hour: int = 500
    requests_per_second: float = 10.0
    # drchrono's quota window is an hour; shorter ones let tests watch the budget roll.
    request_budget_window_seconds: float = 3600.0
    # How many queries of one extraction go side by side.
    max_parallel_requests: int = 4

    def __post_init__(self) -> None:
        """Refuse a number out of its range, whether from a variable or Dagster config."""
        for field in dataclasses.fields(self):
            allowed = ALLOWED.get(field.name)
            value = getattr(self, field.name)
            problem = allowed.problem(value) if allowed else None
            if problem:
                variable = TUNING_VARIABLES.get(field.name)
                raise ConfigurationError(
                    f"drchrono resource field {field.name}={value!r}"
                    f"{f' ({variable})' if variable else ''} {problem}: set it to {allowed}, "
                    f"or leave it unset for the default {field.default:g}"
                )

    @classmethod
    def from_env(
        cls,
        secrets: Mapping[str, str] = SECRET_VARIABLES,
        base_url: str | None = None,
        practice: str | None = None,
    ) -> ClientSettings:
        """Settings from the ``DRCHRONO_*`` variables, the secrets from the variables
        ``secrets`` names (field -> variable); unset ones keep their defaults. ``base_url``
        and ``practice``: a named practice's, instead of ``DRCHRONO_BASE_URL`` and none."""
        variables = {**({} if base_url else {"base_url": BASE_URL_VARIABLE}), **secrets}
        configured = {field: settings.env(variable) for field, variable in variables.items()}
        given = {field: value for field, value in configured.items() if value is not None}
        if base_url:
            given["base_url"] = base_url
        data_root = settings.data_root()
        return cls(
            **given, data_root=data_root, practice=practice, **tuning_from_env()
        ).resolve_token_store()

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/api/doctors``."""
        return self.base_url.rstrip("/") + path

    def application_key(self) -> str:
        """Names this application's tokens and request ledger: one per (API host, client id)."""
        key = f"{self.base_url}|{self.client_id}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def token_key(self) -> str:
        """Names this practice's tokens: the application's key, and the practice's name."""
        key = self.application_key()
        return f"{key}-{self.practice}" if self.practice else key

    def token_location(self, store: str) -> str:
        """Where this practice's tokens are in the token store ``store``: the store itself
        (a database keys them by ``token_key``), or a file beside the store's file."""
        if self.practice is None or is_database_url(store):
            return store
        path = Path(store)
        return str(path.with_name(f"{path.stem}.{self.practice}{path.suffix}"))

    def resolve_token_store(self) -> ClientSettings:
        """These settings with the token store's location decided: ``token_store``
        (``DRCHRONO_TOKEN_STORE``) if set, else a file per application in the home folder.

        A token file may not sit in a local data root (``data_root``): whoever may read the
        data could then read the tokens too.
        """
        location = self.token_store or str(
            settings.default_token_folder() / f"tokens-{self.application_key()}.json"
        )
        root = self.data_root
        if root is not None and settings.is_local(root) and not is_database_url(location):
            path = Path(location).expanduser()
            if path.resolve().is_relative_to(Path(UPath(root).path).resolve()):
                raise ConfigurationError(
                    f"the token store {path} is inside the data root {root}: "
                    "set DRCHRONO_TOKEN_STORE to a path outside it"
                )
        return dataclasses.replace(self, token_store=location)


def tuning_from_env() -> dict[str, str | int | float]:
    """The tuning fields whose ``DRCHRONO_*`` variable is set, as numbers within their
    ``ALLOWED`` range; a bad one is refused naming the variable, not the field."""
    defaults = {field.name: field.default for field in dataclasses.fields(ClientSettings)}
    tuning: dict[str, str | int | float] = {}
    for field, variable in TUNING_VARIABLES.items():
        allowed = ALLOWED.get(field)
        value: str | int | float | None
        if allowed:
            value = settings.number(variable, allowed, defaults[field])
        else:
            value = settings.env(variable)  # api_version: any text
        if value is not None:
            tuning[field] = value
    return tuning
