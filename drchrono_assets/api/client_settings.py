"""The client's settings: how to reach drchrono and how hard to push it, from ``DRCHRONO_*``
variables or the Dagster resource's fields."""

from __future__ import annotations

import dataclasses

import pydantic

from drchrono_assets import settings

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
    # A file path or a ``postgresql+psycopg2://`` URL (with a password: kept out of ``repr``).
    token_store: str | None = dataclasses.field(default=None, repr=False)
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

    @classmethod
    def from_env(cls) -> ClientSettings:
        """Settings from the ``DRCHRONO_*`` variables; unset ones keep their defaults."""
        variables = {"base_url": BASE_URL_VARIABLE, **SECRET_VARIABLES, **TUNING_VARIABLES}
        configured = {field: settings.env(variable) for field, variable in variables.items()}
        return cls(**{field: value for field, value in configured.items() if value is not None})
