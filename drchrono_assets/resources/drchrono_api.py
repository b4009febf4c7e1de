"""The Dagster resource that configures and owns the run's drchrono API client."""

from __future__ import annotations

import dataclasses
import threading

import dagster as dg
from pydantic import Field, PrivateAttr

from drchrono_assets import settings
from drchrono_assets.api.client import DrchronoClient
from drchrono_assets.api.client_settings import (
    BASE_URL_VARIABLE,
    SECRET_VARIABLES,
    ClientSettings,
    tuning_from_env,
)
from drchrono_assets.api.origins import require_https_base_url

#: The tag of every run of a daily sweep (the drchrono_changes sensor's): its sweep's id.
SWEEP_TAG = "drchrono/sweep"


def _resolved(value: object) -> object:
    """A field's value; an ``EnvVar`` is only resolved by Dagster, not when used in a script."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


class DrchronoApiResource(dg.ConfigurableResource):
    """drchrono API settings, and the one ``DrchronoClient`` a run shares (``client``).

    Secrets come from ``DRCHRONO_CLIENT_ID``, ``DRCHRONO_CLIENT_SECRET`` and
    ``DRCHRONO_REFRESH_TOKEN`` (the first refresh token; rotated ones live in the token store).
    The fields are ``ClientSettings``'s, with its defaults. They are declared again here, not
    generated from it, so type checkers and Dagster's config schema see each one;
    ``test_api_resource`` keeps the two equal (names, order, types, defaults, ``repr``).
    """

    base_url: str = ClientSettings.base_url
    client_id: str | None = None
    # Kept out of repr: pydantic would otherwise print them in tracebacks.
    client_secret: str | None = Field(default=None, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    api_version: str | None = None
    token_store: str | None = Field(default=None, repr=False)
    data_root: str | None = None
    practice: str | None = None
    page_size: int = ClientSettings.page_size
    timeout_seconds: float = ClientSettings.timeout_seconds
    max_attempts: int = ClientSettings.max_attempts
    backoff_initial_seconds: float = ClientSettings.backoff_initial_seconds
    backoff_max_seconds: float = ClientSettings.backoff_max_seconds
    requests_per_hour: int = ClientSettings.requests_per_hour
    requests_per_second: float = ClientSettings.requests_per_second
    request_budget_window_seconds: float = ClientSettings.request_budget_window_seconds
    max_parallel_requests: int = ClientSettings.max_parallel_requests

    _client: DrchronoClient | None = PrivateAttr(default=None)
    _sweep: bool = PrivateAttr(default=False)
    _client_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_env(cls, data_root: str | None = None) -> DrchronoApiResource:
        """Configured from ``DRCHRONO_*`` variables; secrets stay ``EnvVar`` references. A
        token file must stay out of ``data_root``, the practice's data.

        The code location calls this at load, so a bad value is refused there, naming its
        variable and the allowed values (``dagster definitions validate`` shows it).
        """
        secrets = {
            field: dg.EnvVar(variable)
            for field, variable in SECRET_VARIABLES.items()
            if settings.env(variable)
        }
        base_url = settings.env(BASE_URL_VARIABLE, settings.DEFAULT_BASE_URL)
        require_https_base_url(base_url)  # the client checks again: config may override it
        return cls(base_url=base_url, data_root=data_root, **secrets, **tuning_from_env())

    @property
    def client(self) -> DrchronoClient:
        """The client: one per run, shared by its in-process steps and their threads, so they
        share one token manager, session and request budget.

        Built on first use (Dagster copies the resource for each run, so runs never share
        one). The client opens nothing until its first request: a run whose steps never call
        the API needs no credentials, and a missing one fails the step that needs it.
        """
        with self._client_lock:
            if self._client is None:
                self._client = DrchronoClient(
                    self.client_settings(), log=dg.get_dagster_logger(), sweep=self._sweep
                )
            return self._client

    def client_settings(self) -> ClientSettings:
        """This configuration as the client's settings, ``EnvVar`` references resolved and
        the token store's location decided (``ClientSettings.resolve_token_store``)."""
        fields = dataclasses.fields(ClientSettings)
        config = ClientSettings(
            **{field.name: _resolved(getattr(self, field.name)) for field in fields}
        )
        return config.resolve_token_store()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Refuse a field out of its range (from Dagster config), or a token file inside
        the data root, before any step runs. A run of a daily sweep (the sensor tags each)
        goes before backfills in the application's request budget."""
        self.client_settings()
        run = context.run
        self._sweep = run is not None and SWEEP_TAG in run.tags

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._client is not None:
            self._client.close()
