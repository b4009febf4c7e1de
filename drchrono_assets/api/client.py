"""The drchrono API client: OAuth 2.0 with rotating refresh tokens, retries, a shared request
budget, pagination and the documented write calls. Plain Python: the Dagster resource
(``drchrono_assets.resources``), the ``auth`` CLI and scripts all build one of these."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import requests
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.api.answers import (
    DEFAULT_MAX_RESPONSE_BYTES,
    Answer,
    TransientFailure,
    UnreadableBody,
    parse_json,
    retry_after_seconds,
)

# Re-exported: the Dagster resource and scripts import the settings from here.
from drchrono_assets.api.client_settings import BASE_URL_VARIABLE as BASE_URL_VARIABLE
from drchrono_assets.api.client_settings import REQUIRED, SECRET_VARIABLES, ClientSettings
from drchrono_assets.api.client_settings import TUNING_VARIABLES as TUNING_VARIABLES
from drchrono_assets.api.oauth_tokens import ClientCredentials, TokenManager
from drchrono_assets.api.origins import require_https_base_url, same_origin
from drchrono_assets.api.rate_budget import RequestBudget, open_request_ledger
from drchrono_assets.api.reachability import RUN_CONNECT_WAITS
from drchrono_assets.api.retries import Retries
from drchrono_assets.api.token_store import FileTokenStore, TokenSet, TokenStore, open_token_store
from drchrono_assets.api.transport import WRITE_ADVICE, Call, Transport
from drchrono_assets.errors import ApiRequestError, ConfigurationError, MalformedPageError

if TYPE_CHECKING:
    # Only annotations use it: importing the catalog at run time would import Dagster.
    from drchrono_assets.catalog.records import JsonRecord

# After a 401, how many times to refresh and resend before backing off like any failure.
MAX_REFRESHES_PER_REQUEST = 3
TOKEN_ENDPOINT = "/o/token/"


class ReminderConflictError(ApiRequestError):
    """The appointment already has reminders (HTTP 409 from ``apply_to_appointment``)."""


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
        self.transport = Transport(
            self.session,
            self.budget,
            config.base_url,
            config.timeout_seconds,
            client.max_response_bytes,
            config.api_version,
        )
        self.retries = Retries(
            config, self.budget, self.transport, client.connect_waits, client._log
        )
        endpoint = _TokenEndpoint(client, self)
        self.tokens = TokenManager(credentials, self.store, endpoint, client._log)
        # The API's clock as of each thread's last answer (its ``Date`` header).
        self.answered = threading.local()


class _TokenEndpoint:
    """``/o/token/`` for the token manager: one attempt in a slot it took, retried outside
    the token lock with the client's backoff."""

    def __init__(self, client: DrchronoClient, connection: _Connection) -> None:
        self._client = client
        self._connection = connection
        self._call = Call("POST", client.url(TOKEN_ENDPOINT), TOKEN_ENDPOINT, auth=False, kwargs={})

    def reserve(self) -> str:
        return self._connection.budget.acquire()

    def cancel(self, ticket: str) -> None:
        self._connection.budget.cancel(ticket)

    def post(self, form: Mapping[str, str], ticket: str) -> tuple[int, Any]:
        call = Call("POST", self._call.url, TOKEN_ENDPOINT, auth=False, kwargs={"data": dict(form)})
        return self._client._attempt(self._connection, call, ticket)

    def retrying(self, attempt: Callable[[], TokenSet]) -> TokenSet:
        return self._connection.retries.run(self._call, attempt)


class DrchronoClient:
    """A drchrono API client, safe to share between threads.

    Nothing is opened until the first request: then the credentials are checked and the
    token store, the request ledger and a keep-alive session are opened, once for all
    threads. ``connect_waits``: the short waits before giving up on an API no connection
    reaches (interactive commands pass ``INTERACTIVE_CONNECT_WAITS``).
    """

    def __init__(
        self,
        config: ClientSettings,
        *,
        log: logging.Logger | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        connect_waits: Sequence[float] = RUN_CONNECT_WAITS,
    ) -> None:
        self.config = config
        self.connect_waits = tuple(connect_waits)
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
                require_https_base_url(self.config.base_url)
                self._connection = _Connection(self)
            return self._connection

    def _log_wait(self, seconds: float) -> None:
        self._log.info(f"drchrono request budget spent; waiting {seconds:.0f}s")

    def _check_next(self, path: str, next_url: str, seen: set[str]) -> None:
        if not same_origin(next_url, self.config.base_url):
            # Following it would send our bearer token to another host.
            raise MalformedPageError(f"GET {path}: 'next' points outside {self.config.base_url}")
        if next_url in seen:
            raise MalformedPageError(f"GET {path}: 'next' repeats an earlier page")

    def _request(self, method: str, path: str, *, url: str | None = None, **kwargs: Any) -> Any:
        """The body of an authorized request to ``path`` (or ``url``, a later page of it);
        an HTTP error status raises."""
        call = Call(method, url or self.url(path), endpoint=path, auth=True, kwargs=kwargs)
        connection = self._connect()
        status, body = connection.retries.run(call, lambda: self._attempt(connection, call))
        if status >= 400:
            raise self._client_error(method, path, status, body)
        return body

    def _attempt(
        self, connection: _Connection, call: Call, ticket: str | None = None
    ) -> tuple[int, Any]:
        """One try: send (in ``ticket``'s budget slot, if taken), refreshing the access token
        on 401; transient failures raise."""
        if not call.auth:
            answer = connection.transport.send(call, None, ticket)
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

    def _send_authorized(self, connection: _Connection, call: Call) -> Answer:
        """Send with the current access token; on 401, refresh and send again (bounded).

        A token another thread or process refreshed may already be spent or expired when we
        use it: that is no reason to fail. A 401 that outlasts several refreshes is retried
        like any transient failure and reported as a rejected token only when retries run out.
        """
        tokens = connection.tokens
        token = tokens.access_token()
        answer = connection.transport.send(call, token)
        for _ in range(MAX_REFRESHES_PER_REQUEST):
            if answer.status != 401:
                return answer
            token = tokens.refresh(rejected=token)
            answer = connection.transport.send(call, token)
        if answer.status == 401:
            raise TransientFailure(
                f"HTTP 401 with {MAX_REFRESHES_PER_REQUEST} freshly refreshed access tokens",
                token_refused=True,
            )
        return answer

    @staticmethod
    def _json(answer: Answer, call: Call) -> Any:
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
