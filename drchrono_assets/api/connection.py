"""What a client opens on first use, and the one authorized request every call goes through.

``Connection`` puts the layers together, each knowing only those below it: the keep-alive
session and request budget, the transport, the retries, the token store and token manager,
and the ``OAuthBearer`` auth that signs requests. ``BaseClient`` opens one per client (for
all its threads) and sends through it; the read and write calls build on ``BaseClient``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from drchrono_assets.api.answers import DEFAULT_MAX_RESPONSE_BYTES
from drchrono_assets.api.client_settings import REQUIRED, SECRET_VARIABLES, ClientSettings
from drchrono_assets.api.fair_share import Claimant
from drchrono_assets.api.oauth_auth import TOKEN_ENDPOINT, HttpTokenEndpoint, OAuthBearer
from drchrono_assets.api.oauth_tokens import ClientCredentials, TokenManager
from drchrono_assets.api.origins import require_https_base_url
from drchrono_assets.api.outcomes import Outcomes
from drchrono_assets.api.rate_budget import RequestBudget, open_request_ledger
from drchrono_assets.api.reachability import RUN_CONNECT_WAITS
from drchrono_assets.api.retries import Retries
from drchrono_assets.api.token_store import TokenStore, open_token_store
from drchrono_assets.api.transport import Call, Transport
from drchrono_assets.errors import ApiRequestError, ConfigurationError


@dataclasses.dataclass(frozen=True)
class Connection:
    """A keep-alive session, the request budget, the token store and everything that sends
    through them, shared by a client's threads."""

    session: requests.Session
    store: TokenStore
    transport: Transport
    retries: Retries
    outcomes: Outcomes
    bearer: OAuthBearer

    @classmethod
    def open(
        cls,
        config: ClientSettings,
        store_location: str,
        *,
        log: logging.Logger,
        connect_waits: Sequence[float],
        max_response_bytes: int,
        sweep: bool = False,
    ) -> Connection:
        """Open the token store at ``store_location``, the request ledger beside it and a
        session; nothing is sent yet."""
        key = config.application_key()
        store = open_token_store(config.token_location(store_location), config.token_key())
        budget = RequestBudget(
            config.requests_per_hour,
            config.requests_per_second,
            on_wait=lambda seconds: log.info(
                f"drchrono request budget spent; waiting {seconds:.0f}s"
            ),
            ledger=open_request_ledger(store_location, key, log),
            window_seconds=config.request_budget_window_seconds,
            # The practice's turn in the application's budget: a sweep's before a backfill's.
            claimant=Claimant(config.practice, sweep),
        )
        session = requests.Session()
        transport = Transport(
            session,
            budget,
            config.base_url,
            config.timeout_seconds,
            max_response_bytes,
            config.api_version,
        )
        retries = Retries(config, budget, transport, connect_waits, log)
        outcomes = Outcomes(budget, config.backoff_initial_seconds)
        credentials = ClientCredentials(
            config.client_id or "",
            config.client_secret or "",
            config.refresh_token,
            config.practice,
        )
        endpoint = HttpTokenEndpoint(transport, outcomes, retries, config.url(TOKEN_ENDPOINT))
        tokens = TokenManager(credentials, store, endpoint, log)
        return cls(session, store, transport, retries, outcomes, OAuthBearer(tokens))

    def attempt(self, call: Call) -> tuple[int, Any]:
        """One signed try at ``call``: (status, JSON body); ``TransientFailure`` when
        another try may do better."""
        return self.outcomes.read(call, self.bearer.send(self.transport, call))


class BaseClient:
    """A client's settings, and its connection opened on first use; ``_request`` sends
    every call. ``connect_waits``: the short waits before giving up on an API no connection
    reaches (interactive commands pass ``reachability.INTERACTIVE_CONNECT_WAITS``)."""

    def __init__(
        self,
        config: ClientSettings,
        *,
        log: logging.Logger | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        connect_waits: Sequence[float] = RUN_CONNECT_WAITS,
        sweep: bool = False,
    ) -> None:
        self.config = config
        self.sweep = sweep  # whether its requests are a daily sweep's (fair_share)
        self.connect_waits = tuple(connect_waits)
        # A longer answer fails its request: a runaway body must not exhaust memory.
        self.max_response_bytes = max_response_bytes
        self._log = log or logging.getLogger(__name__)
        self._connection: Connection | None = None
        self._connection_lock = threading.Lock()

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/api/doctors``."""
        return self.config.url(path)

    def application_key(self) -> str:
        """Names this application's request ledger: one per (API host, client id)."""
        return self.config.application_key()

    def open_token_store(self) -> TokenStore:
        """This practice's tokens in the token store the settings name."""
        location = self.config.token_location(self._token_store_location())
        return open_token_store(location, self.config.token_key())

    def close(self) -> None:
        """Close the keep-alive session, if one was opened."""
        if self._connection is not None:
            self._connection.session.close()

    def _token_store_location(self) -> str:
        if self.config.token_store is None:
            raise ConfigurationError(
                "no token store in the client's settings: set DRCHRONO_TOKEN_STORE, or make "
                "them with ClientSettings.from_env() or .resolve_token_store(), which pick a "
                "file in the home folder"
            )
        return self.config.token_store

    def _connect(self) -> Connection:
        with self._connection_lock:
            if self._connection is None:
                missing = [
                    SECRET_VARIABLES[field] for field in REQUIRED if not getattr(self.config, field)
                ]
                if missing:
                    raise ConfigurationError(
                        f"drchrono credentials missing: set {' and '.join(missing)} "
                        "(see README, Configuration)"
                    )
                require_https_base_url(self.config.base_url)
                self._connection = Connection.open(
                    self.config,
                    self._token_store_location(),
                    log=self._log,
                    connect_waits=self.connect_waits,
                    max_response_bytes=self.max_response_bytes,
                    sweep=self.sweep,
                )
            return self._connection

    def _request(
        self,
        method: str,
        path: str,
        *,
        url: str | None = None,
        errors: Mapping[int, type[ApiRequestError]] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The body of an authorized request to ``path`` (or ``url``, a later page of it),
        retried while that is safe; an HTTP error status raises ``ApiRequestError``, or the
        subclass ``errors`` names for that status."""
        call = Call(method, url or self.url(path), endpoint=path, auth=True, kwargs=kwargs)
        connection = self._connect()
        status, body = connection.retries.run(call, lambda: connection.attempt(call))
        if status < 400:
            return body
        # Validation errors are {"field": ["message"]}; messages may echo values: name fields only.
        fields = ", ".join(sorted(body)) if isinstance(body, Mapping) else ""
        detail = f" (problem with: {fields})" if fields else ""
        error = (errors or {}).get(status, ApiRequestError)
        raise error(f"{method} {path} answered HTTP {status}{detail}")
