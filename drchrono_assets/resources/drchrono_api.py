"""The one Dagster resource that talks to the drchrono API."""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import dagster as dg
import requests
import tenacity
from pydantic import Field, PrivateAttr
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.errors import (
    ApiRequestError,
    ConfigurationError,
    MalformedPageError,
    TokenRejectedError,
)
from drchrono_assets.resources.oauth import ClientCredentials, TokenManager
from drchrono_assets.resources.rate_budget import RequestBudget
from drchrono_assets.resources.token_store import (
    FileTokenStore,
    TokenSet,
    TokenStore,
    open_token_store,
)

JsonRecord = Mapping[str, Any]
# Passed as EnvVar references so values never reach run config or the UI. A database URL
# in DRCHRONO_TOKEN_STORE carries a password.
SECRET_VARIABLES = {
    "client_id": "DRCHRONO_CLIENT_ID",
    "client_secret": "DRCHRONO_CLIENT_SECRET",
    "refresh_token": "DRCHRONO_REFRESH_TOKEN",
    "token_store": "DRCHRONO_TOKEN_STORE",
}
REQUIRED = ("client_id", "client_secret")


class ReminderConflictError(ApiRequestError):
    """The appointment already has reminders (HTTP 409 from ``apply_to_appointment``)."""


class _TransientFailure(Exception):
    """A failure worth retrying; ``reason`` never holds a token or a record value."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def _retry_after_seconds(header: str | None) -> float | None:
    """``Retry-After`` as seconds, from either of its two forms."""
    if not header:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _resolved(value: str | None) -> str | None:
    """A field's value; an ``EnvVar`` is only resolved by Dagster, not when used in a script."""
    return value.get_value() if isinstance(value, dg.EnvVar) else value


class _Connection:
    """Per-instance state: one keep-alive session, the token manager and the request budget."""

    def __init__(self, resource: DrchronoApiResource) -> None:
        self.session = requests.Session()
        self.budget = RequestBudget(
            resource.requests_per_hour, resource.requests_per_second, on_wait=resource.log_wait
        )
        credentials = ClientCredentials(
            _resolved(resource.client_id) or "",
            _resolved(resource.client_secret) or "",
            _resolved(resource.refresh_token),
        )
        self.store = resource.open_token_store()
        self.tokens = TokenManager(credentials, self.store, resource.post_token_form)


class DrchronoApiResource(dg.ConfigurableResource):
    """drchrono API client: OAuth 2.0 with rotating refresh tokens, pagination, retries, budget.

    Secrets come from ``DRCHRONO_CLIENT_ID``, ``DRCHRONO_CLIENT_SECRET`` and
    ``DRCHRONO_REFRESH_TOKEN`` (the first refresh token; rotated ones live in the token store).
    """

    base_url: str = settings.DEFAULT_BASE_URL
    client_id: str | None = None
    # Kept out of repr: pydantic would otherwise print them in tracebacks.
    client_secret: str | None = Field(default=None, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    api_version: str | None = None
    token_store: str | None = Field(default=None, repr=False)
    page_size: int = 250
    timeout_seconds: float = 30.0
    max_attempts: int = 6
    backoff_initial_seconds: float = 2.0
    backoff_max_seconds: float = 120.0
    requests_per_hour: int = 500
    requests_per_second: float = 10.0
    max_parallel_requests: int = 4

    _connection: _Connection | None = PrivateAttr(default=None)
    _connection_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def from_env(cls) -> DrchronoApiResource:
        """Configured from ``DRCHRONO_*`` variables; secrets stay ``EnvVar`` references."""
        secrets = {
            field: dg.EnvVar(variable)
            for field, variable in SECRET_VARIABLES.items()
            if settings.env(variable)
        }
        optional = {
            "api_version": settings.env("DRCHRONO_API_VERSION"),
            "page_size": settings.env("DRCHRONO_PAGE_SIZE"),
            "requests_per_hour": settings.env("DRCHRONO_REQUESTS_PER_HOUR"),
        }
        return cls(
            base_url=settings.env("DRCHRONO_BASE_URL", settings.DEFAULT_BASE_URL),
            **secrets,
            **{key: value for key, value in optional.items() if value is not None},
        )

    # -- reading ---------------------------------------------------------------------------

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[list[JsonRecord]]:
        """Every page of a list endpoint, following ``next`` until it is null."""
        url: str | None = self.url(path)
        query: dict[str, Any] | None = {**(params or {}), "page_size": self.page_size}
        seen: set[str] = set()
        while url:
            body = self._request("GET", url, endpoint=path, params=query)
            page = len(seen) + 1
            if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
                raise MalformedPageError(
                    f"GET {path}: page {page} has no 'results' list; nothing from this "
                    "request was written"
                )
            next_url = body.get("next")
            if next_url is not None and not isinstance(next_url, str):
                raise MalformedPageError(f"GET {path}: page {page} has a 'next' that is not a URL")
            seen.add(url)
            if next_url is not None:
                self._check_next(path, next_url, seen)
            yield body["results"]
            url, query = next_url, None

    def list_records(self, path: str, params: Mapping[str, Any] | None = None) -> list[JsonRecord]:
        """All records of a list endpoint (for small lists; assets stream pages instead)."""
        return [record for page in self.iter_pages(path, params) for record in page]

    def get(self, path: str) -> JsonRecord:
        """One record from a detail endpoint such as ``/api/doctors/12``."""
        return self._request("GET", self.url(path), endpoint=path)

    def current_user(self) -> JsonRecord:
        """The connected account's user record (follows the ``/api/users/current`` redirect).

        A cheap connection check: it proves the credentials and the token store work.
        """
        return self._request("GET", self.url("/api/users/current"), endpoint="/api/users/current")

    # -- connecting an account -------------------------------------------------------------

    def authorize_with_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Exchange an authorization code from ``/o/authorize/`` and store the tokens."""
        return self._connect().tokens.exchange_code(code, redirect_uri)

    def stored_tokens(self) -> TokenSet | None:
        """What the token store holds for this application (``auth status``), if anything."""
        return self._connect().store.load()

    # -- writing (never retried after the request may have been applied) --------------------

    def create_appointment(
        self,
        *,
        doctor: int,
        office: int,
        patient: int | None,
        scheduled_time: dt.datetime,
        duration: int | None = None,
        exam_room: int | None = None,
        profile: int | None = None,
        **fields: Any,
    ) -> JsonRecord:
        """Create an appointment (``POST /api/appointments``) and return it."""
        data = {
            "doctor": f"/api/doctors/{doctor}",
            "office": f"/api/offices/{office}",
            "patient": f"/api/patients/{patient}" if patient is not None else None,
            "scheduled_time": scheduled_time.isoformat(timespec="seconds"),
            "duration": duration,
            "exam_room": exam_room,
            "profile": f"/api/appointment_profiles/{profile}" if profile is not None else None,
            **fields,
        }
        data = {key: value for key, value in data.items() if value is not None}
        return self._request(
            "POST", self.url("/api/appointments"), endpoint="/api/appointments", data=data
        )

    def upload_document(
        self,
        *,
        doctor: int,
        patient: int,
        description: str,
        date: dt.date,
        document: IO[bytes] | Path,
        filename: str | None = None,
        metatags: list[str] | None = None,
    ) -> JsonRecord:
        """Upload a file into a patient's chart (multipart ``POST /api/documents``)."""
        data = {
            "doctor": f"/api/doctors/{doctor}",
            "patient": f"/api/patients/{patient}",
            "description": description,
            "date": date.isoformat(),
            "metatags": json.dumps(metatags or []),
        }
        if isinstance(document, Path):
            with document.open("rb") as handle:
                files = {"document": (filename or document.name, handle.read())}
        else:
            files = {"document": (filename or "document", document.read())}
        return self._request(
            "POST", self.url("/api/documents"), endpoint="/api/documents", data=data, files=files
        )

    def apply_reminder_profile(self, profile_id: int, appointment_id: str) -> None:
        """Add a reminder profile's reminders to an appointment that has none (HTTP 204).

        Raises ``ReminderConflictError`` when the appointment already has reminders (409) and
        ``ApiRequestError`` when the appointment is missing or invalid (400).
        """
        endpoint = f"/api/reminder_profiles/{profile_id}/apply_to_appointment"
        self._request(
            "POST",
            self.url(endpoint),
            endpoint=endpoint,
            data={"appointment": f"/api/appointments/{appointment_id}"},
        )

    # -- plumbing ----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def resolved_client_id(self) -> str | None:
        """The client id, also when the resource is used outside a Dagster run."""
        return _resolved(self.client_id)

    def application_key(self) -> str:
        """Names this application's tokens: one set per (API host, client id)."""
        client = self.resolved_client_id
        return hashlib.sha256(f"{self.base_url}|{client}".encode()).hexdigest()[:16]

    def open_token_store(self) -> TokenStore:
        """``DRCHRONO_TOKEN_STORE`` (a file path or a ``postgresql+psycopg2://`` URL), else a
        file per application in the home folder. A file store may not sit in the data root."""
        location = _resolved(self.token_store) or str(
            settings.default_token_folder() / f"tokens-{self.application_key()}.json"
        )
        store = open_token_store(location, self.application_key())
        data_root = settings.data_root()
        if (
            isinstance(store, FileTokenStore)
            and settings.data_root_is_local()
            and store.path.resolve().is_relative_to(Path(UPath(data_root).path).resolve())
        ):
            raise ConfigurationError(
                f"the token store {store.path} is inside the data root {data_root}: "
                "set DRCHRONO_TOKEN_STORE to a path outside it"
            )
        return store

    @property
    def requests_used(self) -> int:
        """Requests this instance sent (token endpoint included): the cost that matters."""
        return self._connection.budget.used if self._connection else 0

    def log_wait(self, seconds: float) -> None:
        dg.get_dagster_logger().info(f"drchrono request budget spent; waiting {seconds:.0f}s")

    def post_token_form(self, form: Mapping[str, str]) -> tuple[int, Any]:
        """POST a grant to ``/o/token/``; transient failures are retried like any request."""
        return self._request(
            "POST",
            self.url("/o/token/"),
            endpoint="/o/token/",
            data=dict(form),
            auth=False,
            status_and_body=True,
        )

    def _connect(self) -> _Connection:
        with self._connection_lock:
            if self._connection is None:
                missing = [
                    SECRET_VARIABLES[field]
                    for field in REQUIRED
                    if not _resolved(getattr(self, field))
                ]
                if missing:
                    raise ConfigurationError(
                        f"drchrono credentials missing: set {' and '.join(missing)} "
                        "(see README, Configuration)"
                    )
                self._connection = _Connection(self)
            return self._connection

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._connection is not None:
            self._connection.session.close()

    def _check_next(self, path: str, next_url: str, seen: set[str]) -> None:
        base, nxt = urlsplit(self.base_url), urlsplit(next_url)
        if (nxt.scheme, nxt.netloc) != (base.scheme, base.netloc):
            # Following it would send our bearer token to another host.
            raise MalformedPageError(f"GET {path}: 'next' points outside {base.netloc}")
        if next_url in seen:
            raise MalformedPageError(f"GET {path}: 'next' repeats an earlier page")

    def _request(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        auth: bool = True,
        status_and_body: bool = False,
        **kwargs: Any,
    ) -> Any:
        connection = self._connect()
        # Writes are retried only on 429, which the API answers before doing anything.
        idempotent = method == "GET" or not auth
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.max_attempts),
            wait=self._backoff,
            retry=tenacity.retry_if_exception_type(_TransientFailure),
            before_sleep=lambda state: dg.get_dagster_logger().warning(
                f"{method} {endpoint}: {state.outcome.exception()}; "
                f"retry {state.attempt_number}/{self.max_attempts - 1}"
            ),
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(
                        connection, method, url, endpoint, auth, idempotent, status_and_body, kwargs
                    )
        except tenacity.RetryError as exhausted:
            reason = exhausted.last_attempt.exception()
        raise ApiRequestError(
            f"{method} {endpoint} failed after {self.max_attempts} attempts: {reason}"
        )

    def _backoff(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, _TransientFailure) and failure.retry_after is not None:
            return min(failure.retry_after, 3600.0)
        jitter = tenacity.wait_exponential_jitter(
            multiplier=self.backoff_initial_seconds, max=self.backoff_max_seconds
        )
        return jitter(state)

    def _attempt(
        self,
        connection: _Connection,
        method: str,
        url: str,
        endpoint: str,
        auth: bool,
        idempotent: bool,
        status_and_body: bool,
        kwargs: Mapping[str, Any],
    ) -> Any:
        token = connection.tokens.access_token() if auth else None
        response = self._send(connection, method, url, token, kwargs)
        if auth and response.status_code == 401:
            token = connection.tokens.refresh(rejected=token)
            response = self._send(connection, method, url, token, kwargs)
            if response.status_code == 401:
                raise TokenRejectedError(
                    f"{method} {endpoint}: drchrono rejected a freshly refreshed access token "
                    "(HTTP 401); check the application's scopes and that it is still authorized"
                )
        status = response.status_code
        if status == 429 or (status >= 500 and idempotent):
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            raise _TransientFailure(f"HTTP {status}", retry_after)
        if status == 204:
            return (status, None) if status_and_body else None
        body = self._json(response, idempotent)
        if status_and_body:
            return status, body
        if status >= 400:
            raise self._client_error(method, endpoint, status, body)
        return body

    def _send(
        self,
        connection: _Connection,
        method: str,
        url: str,
        token: str | None,
        kwargs: Mapping[str, Any],
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.api_version:
            headers["X-DRC-API-Version"] = self.api_version
        connection.budget.acquire()
        try:
            return connection.session.request(
                method, url, headers=headers, timeout=self.timeout_seconds, **kwargs
            )
        except requests.Timeout:
            failure = "timed out"
        except requests.ConnectionError:
            failure = "connection failed"
        # Outside the except blocks: requests' exceptions quote the URL, which may carry a cursor.
        raise _TransientFailure(failure)

    @staticmethod
    def _json(response: requests.Response, idempotent: bool) -> Any:
        if not response.content:
            return None
        try:
            return json.loads(response.content, parse_float=decimal.Decimal)
        except ValueError:
            pass
        if idempotent and response.status_code < 400:
            raise _TransientFailure("response body is not valid JSON")
        return None

    @staticmethod
    def _client_error(method: str, endpoint: str, status: int, body: Any) -> ApiRequestError:
        # Validation errors are {"field": ["message"]}; messages may echo values: name fields only.
        fields = ", ".join(sorted(body)) if isinstance(body, Mapping) else ""
        detail = f" (problem with: {fields})" if fields else ""
        error = ReminderConflictError if status == 409 else ApiRequestError
        return error(f"{method} {endpoint} answered HTTP {status}{detail}")
