"""The drchrono API client: OAuth 2.0 with rotating refresh tokens, retries, a shared request
budget, pagination and the documented write calls. Plain Python: the Dagster resource
(``drchrono_assets.resources``), the ``auth`` CLI and scripts all build one of these."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import hashlib
import http.client
import json
import logging
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pydantic
import requests
import tenacity
import urllib3
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.api.answers import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Answer,
    BodyTooLarge,
    TransientFailure,
    UnreadableBody,
    parse_json,
    read_answer,
    retry_after_seconds,
    size_text,
    transport_failure,
)
from drchrono_assets.api.oauth_tokens import ClientCredentials, TokenManager
from drchrono_assets.api.rate_budget import RequestBudget, open_request_ledger
from drchrono_assets.api.token_store import FileTokenStore, TokenSet, TokenStore, open_token_store
from drchrono_assets.errors import (
    ApiRequestError,
    ConfigurationError,
    MalformedPageError,
    TokenRejectedError,
)

if TYPE_CHECKING:
    # Only annotations use it: importing the catalog at run time would import Dagster.
    from drchrono_assets.catalog.records import JsonRecord

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
# After a 401, how many times to refresh and resend before backing off like any failure.
MAX_REFRESHES_PER_REQUEST = 3
TOKEN_ENDPOINT = "/o/token/"
WRITE_ADVICE = (
    "; the write may have been applied, so it is not repeated: check in drchrono before "
    "trying again"
)


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


class ReminderConflictError(ApiRequestError):
    """The appointment already has reminders (HTTP 409 from ``apply_to_appointment``)."""


@dataclasses.dataclass(frozen=True)
class _Call:
    """One logical request, however many attempts it takes."""

    method: str
    url: str
    endpoint: str  # the path, for messages: never the URL, which may carry a cursor
    auth: bool  # False for the token endpoint, which authenticates with the client secret
    kwargs: Mapping[str, Any]

    @property
    def idempotent(self) -> bool:
        # Reads and token grants; a write may have been applied when its answer is lost.
        return self.method == "GET" or not self.auth


def _note_answer_time(connection: _Connection, answer: Answer) -> None:
    # Without a usable Date header the last one stands.
    with contextlib.suppress(KeyError, TypeError, ValueError):
        connection.answered.at = email.utils.parsedate_to_datetime(answer.headers["Date"])


class _Connection:
    """What a client opens on first use: a keep-alive session, tokens and the request budget."""

    def __init__(self, client: DrchronoClient) -> None:
        config = client.config
        self.session = requests.Session()
        credentials = ClientCredentials(
            config.client_id or "", config.client_secret or "", config.refresh_token
        )
        self.store = client.open_token_store()
        self.budget = RequestBudget(
            config.requests_per_hour,
            config.requests_per_second,
            on_wait=client._log_wait,
            ledger=open_request_ledger(
                client.token_store_location(), client.application_key(), client._log
            ),
            window_seconds=config.request_budget_window_seconds,
        )
        self.tokens = TokenManager(credentials, self.store, client._post_token_form)
        # The API's clock as of each thread's last answer (its ``Date`` header).
        self.answered = threading.local()


class DrchronoClient:
    """A drchrono API client, safe to share between threads.

    Nothing is opened until the first request: then the credentials are checked and the
    token store, the request ledger and a keep-alive session are opened, once for all
    threads.
    """

    def __init__(
        self,
        config: ClientSettings,
        *,
        log: logging.Logger | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.config = config
        # A longer answer fails its request: a runaway body must not exhaust memory.
        self.max_response_bytes = max_response_bytes
        self._log = log or logging.getLogger(__name__)
        self._connection: _Connection | None = None
        self._connection_lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------

    def iter_pages(
        self, path: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[list[JsonRecord]]:
        """Every page of a list endpoint, following ``next`` until it is null."""
        url: str | None = self.url(path)
        query: dict[str, Any] | None = {**(params or {}), "page_size": self.config.page_size}
        seen: set[str] = set()
        while url:
            body = self._request("GET", path, url=url, params=query)
            page = len(seen) + 1
            if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
                raise MalformedPageError(
                    f"GET {path}: page {page} has no 'results' list; nothing from this "
                    "request was written"
                )
            if not all(isinstance(record, Mapping) for record in body["results"]):
                raise MalformedPageError(
                    f"GET {path}: page {page} has results that are not JSON objects; nothing "
                    "from this request was written"
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
        return self._request("GET", path)

    def current_user(self) -> JsonRecord:
        """The connected account's user record (follows the ``/api/users/current`` redirect).

        A cheap connection check: it proves the credentials and the token store work.
        """
        return self._request("GET", "/api/users/current")

    def last_answer_time(self) -> dt.datetime | None:
        """The API's time (``Date`` header, UTC) of this thread's last successful answer.

        Change capture takes its cursor from the API's clock, never this machine's.
        """
        return getattr(self._connect().answered, "at", None)

    @property
    def requests_used(self) -> int:
        """Requests this client sent (token endpoint included): the cost that matters."""
        return self._connection.budget.used if self._connection else 0

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
        return self._request("POST", "/api/appointments", data=data)

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
        return self._request("POST", "/api/documents", data=data, files=files)

    def apply_reminder_profile(self, profile_id: int, appointment_id: str) -> None:
        """Add a reminder profile's reminders to an appointment that has none (HTTP 204).

        Raises ``ReminderConflictError`` when the appointment already has reminders (409) and
        ``ApiRequestError`` when the appointment is missing or invalid (400).
        """
        self._request(
            "POST",
            f"/api/reminder_profiles/{profile_id}/apply_to_appointment",
            data={"appointment": f"/api/appointments/{appointment_id}"},
        )

    # -- where things are --------------------------------------------------------------------

    def url(self, path: str) -> str:
        """The absolute URL of an API path such as ``/api/doctors``."""
        return self.config.base_url.rstrip("/") + path

    def application_key(self) -> str:
        """Names this application's tokens: one set per (API host, client id)."""
        key = f"{self.config.base_url}|{self.config.client_id}"
        return hashlib.sha256(key.encode()).hexdigest()[:16]

    def token_store_location(self) -> str:
        """``DRCHRONO_TOKEN_STORE`` (a file path or a ``postgresql+psycopg2://`` URL), else a
        file per application in the home folder."""
        return self.config.token_store or str(
            settings.default_token_folder() / f"tokens-{self.application_key()}.json"
        )

    def open_token_store(self) -> TokenStore:
        """The token store; a file store may not sit in the data root."""
        store = open_token_store(self.token_store_location(), self.application_key())
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

    def close(self) -> None:
        """Close the keep-alive session, if one was opened."""
        if self._connection is not None:
            self._connection.session.close()

    # -- plumbing ----------------------------------------------------------------------------

    def _connect(self) -> _Connection:
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
                self._connection = _Connection(self)
            return self._connection

    def _log_wait(self, seconds: float) -> None:
        self._log.info(f"drchrono request budget spent; waiting {seconds:.0f}s")

    def _post_token_form(self, form: Mapping[str, str]) -> tuple[int, Any]:
        """POST a grant to ``/o/token/``; transient failures are retried like any request."""
        url = self.url(TOKEN_ENDPOINT)
        call = _Call("POST", url, endpoint=TOKEN_ENDPOINT, auth=False, kwargs={"data": dict(form)})
        return self._send_call(call)

    def _check_next(self, path: str, next_url: str, seen: set[str]) -> None:
        base, nxt = urlsplit(self.config.base_url), urlsplit(next_url)
        if (nxt.scheme, nxt.netloc) != (base.scheme, base.netloc):
            # Following it would send our bearer token to another host.
            raise MalformedPageError(f"GET {path}: 'next' points outside {base.netloc}")
        if next_url in seen:
            raise MalformedPageError(f"GET {path}: 'next' repeats an earlier page")

    def _request(self, method: str, path: str, *, url: str | None = None, **kwargs: Any) -> Any:
        """The body of an authorized request to ``path`` (or ``url``, a later page of it);
        an HTTP error status raises."""
        call = _Call(method, url or self.url(path), endpoint=path, auth=True, kwargs=kwargs)
        status, body = self._send_call(call)
        if status >= 400:
            raise self._client_error(method, path, status, body)
        return body

    def _send_call(self, call: _Call) -> tuple[int, Any]:
        """The status and body of ``call``, retrying transient failures with backoff."""
        connection = self._connect()
        attempts = self.config.max_attempts
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=self._backoff,
            retry=tenacity.retry_if_exception_type(TransientFailure),
            before_sleep=lambda state: self._before_retry(connection, call, state),
        )
        try:
            for attempt in retrying:
                with attempt:
                    status, body = self._attempt(connection, call)
        except tenacity.RetryError as exhausted:
            reason = exhausted.last_attempt.exception()
            if isinstance(reason, TransientFailure) and reason.token_refused:
                raise TokenRejectedError(
                    f"{call.method} {call.endpoint}: drchrono refused (HTTP 401) every access "
                    f"token it issued, {attempts} times over; check the application's scopes "
                    "and that it is still authorized"
                ) from None
            raise ApiRequestError(
                f"{call.method} {call.endpoint} failed after {attempts} attempts: {reason}"
            ) from None
        return status, body

    def _backoff(self, state: tenacity.RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        if isinstance(failure, TransientFailure) and failure.retry_after is not None:
            return min(failure.retry_after, 3600.0)
        jitter = tenacity.wait_exponential_jitter(
            multiplier=self.config.backoff_initial_seconds,
            max=self.config.backoff_max_seconds,
        )
        return jitter(state)

    def _before_retry(
        self, connection: _Connection, call: _Call, state: tenacity.RetryCallState
    ) -> None:
        failure = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        if isinstance(failure, TransientFailure) and failure.throttled:
            # The quota is the practice's: every user of the ledger waits, not this thread only.
            connection.budget.pause(seconds)
        self._log.warning(
            f"{call.method} {call.endpoint}: {failure}; "
            f"retry {state.attempt_number}/{self.config.max_attempts - 1} in {seconds:.1f}s"
        )

    def _attempt(self, connection: _Connection, call: _Call) -> tuple[int, Any]:
        """One try: send, refreshing the access token on 401; transient failures raise."""
        if not call.auth:
            answer = self._send(connection, call, None)
        else:
            answer = self._send_authorized(connection, call)
        status = answer.status
        if status == 429 or (status >= 500 and call.idempotent):
            retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
            if status == 429:
                # Published at once, so other users of the ledger stop before this thread's
                # retry logic runs; the retry's wait then extends the pause.
                connection.budget.pause(retry_after or self.config.backoff_initial_seconds)
            raise TransientFailure(f"HTTP {status}", retry_after, throttled=status == 429)
        if status < 400:
            _note_answer_time(connection, answer)
        if status == 204:
            return status, None
        return status, self._json(answer, call)

    def _send_authorized(self, connection: _Connection, call: _Call) -> Answer:
        """Send with the current access token; on 401, refresh and send again (bounded).

        A token another thread or process refreshed may already be spent or expired when we
        use it: that is no reason to fail. A 401 that outlasts several refreshes is retried
        like any transient failure and reported as a rejected token only when retries run out.
        """
        tokens = connection.tokens
        token = tokens.access_token()
        answer = self._send(connection, call, token)
        for _ in range(MAX_REFRESHES_PER_REQUEST):
            if answer.status != 401:
                return answer
            token = tokens.refresh(rejected=token)
            answer = self._send(connection, call, token)
        if answer.status == 401:
            raise TransientFailure(
                f"HTTP 401 with {MAX_REFRESHES_PER_REQUEST} freshly refreshed access tokens",
                token_refused=True,
            )
        return answer

    def _send(self, connection: _Connection, call: _Call, token: str | None) -> Answer:
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if self.config.api_version:
            headers["X-DRC-API-Version"] = self.config.api_version
        ticket = connection.budget.acquire()
        try:
            # Streamed, so a body past the limit is never read whole; the body is read inside
            # the budget's ticket: a slot ages from the answer's end.
            response = connection.session.request(
                call.method,
                call.url,
                headers=headers,
                timeout=self.config.timeout_seconds,
                stream=True,
                **call.kwargs,
            )
            with response:  # closed unread, the connection is dropped, not drained
                return read_answer(response, self.max_response_bytes)
        except BodyTooLarge as too_large:
            advice = "" if call.idempotent else WRITE_ADVICE
            raise ApiRequestError(
                f"{call.method} {call.endpoint} answered HTTP {too_large.status} with a body "
                f"larger than the limit of {size_text(self.max_response_bytes)}{advice}"
            ) from None
        except (
            requests.RequestException,
            urllib3.exceptions.HTTPError,
            http.client.HTTPException,
        ) as error:
            failure = transport_failure(error, idempotent=call.idempotent)
        finally:
            connection.budget.release(ticket)
        # Outside the except block: requests' exceptions quote the URL, which may carry a cursor.
        if failure.transient:
            raise TransientFailure(failure.reason)
        advice = WRITE_ADVICE if failure.write_may_be_applied else ""
        raise ApiRequestError(f"{call.method} {call.endpoint}: {failure.reason}{advice}")

    @staticmethod
    def _json(answer: Answer, call: _Call) -> Any:
        if not answer.body:
            return None
        try:
            return parse_json(answer.body)
        except UnreadableBody as unreadable:
            problem = unreadable
        if answer.status >= 400:
            return None  # the status says what went wrong; field names were only a bonus
        if problem.cut_short and call.idempotent:
            # A passing fault, like a body shorter than its Content-Length: read it again.
            raise TransientFailure("the answer was cut short (its JSON ends early)")
        # Not JSON at all (an HTML page, another encoding): asking again gets the same.
        advice = "" if call.idempotent else WRITE_ADVICE
        raise ApiRequestError(
            f"{call.method} {call.endpoint} answered HTTP {answer.status} with a body that "
            f"{problem.problem}{advice}"
        )

    @staticmethod
    def _client_error(method: str, endpoint: str, status: int, body: Any) -> ApiRequestError:
        # Validation errors are {"field": ["message"]}; messages may echo values: name fields only.
        fields = ", ".join(sorted(body)) if isinstance(body, Mapping) else ""
        detail = f" (problem with: {fields})" if fields else ""
        error = ReminderConflictError if status == 409 else ApiRequestError
        return error(f"{method} {endpoint} answered HTTP {status}{detail}")
