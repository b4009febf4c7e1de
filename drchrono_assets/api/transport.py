"""One request to drchrono: inside the request budget, streamed and bounded, following a
redirect only on the API's own origin.

``requests`` would follow any redirect: a 307/308 from the token endpoint would resend the
client secret and refresh token wherever it points, and a redirected read would lose its
bearer token and take another host's page as data. Redirects are followed here instead, one
budgeted request at a time, and refused when they leave the API's scheme, host and port.
"""

from __future__ import annotations

import dataclasses
import http.client
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

import requests
import urllib3
from requests.auth import AuthBase

from drchrono_assets.api.answers import (
    Answer,
    BodyTooLarge,
    TransientFailure,
    read_answer,
    size_text,
    transport_failure,
)
from drchrono_assets.api.client_settings import BASE_URL_VARIABLE
from drchrono_assets.api.origins import origin_of, same_origin, without_fragment
from drchrono_assets.api.rate_budget import RequestBudget
from drchrono_assets.errors import ApiRequestError

WRITE_ADVICE = (
    "; the write may have been applied, so it is not repeated: check in drchrono before "
    "trying again"
)
# drchrono documents one redirect (``/api/users/current``); a chain this long is a loop.
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# A TCP connect (and TLS handshake) takes well under a second; waiting the whole read timeout
# for one only delays reporting a host that drops connections.
CONNECT_TIMEOUT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Call:
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


@dataclasses.dataclass(frozen=True)
class Transport:
    """Sends calls over one keep-alive session, each request in a slot of the budget."""

    session: requests.Session
    budget: RequestBudget
    base_url: str
    timeout_seconds: float
    max_response_bytes: int
    api_version: str | None = None
    # Set by the first answer of any kind (even a 503): the API is reachable at ``base_url``.
    reached: threading.Event = dataclasses.field(default_factory=threading.Event, compare=False)

    def send(self, call: Call, auth: AuthBase | None, ticket: str | None = None) -> Answer:
        """The answer to ``call`` after same-origin redirects, each request signed by ``auth``
        (None for the token endpoint); ``ticket``: a budget slot taken already (the token
        endpoint's, taken before the token lock)."""
        headers = {"Accept": "application/json"}
        if self.api_version:
            headers["X-DRC-API-Version"] = self.api_version
        method, url, kwargs = call.method, call.url, dict(call.kwargs)
        for _ in range(MAX_REDIRECTS + 1):
            answer = self._exchange(call, method, url, headers, auth, kwargs, ticket)
            ticket = None  # each further request takes a slot of its own
            if not 300 <= answer.status < 400:
                return answer
            url = self._redirect_target(call, answer, url)
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method, kwargs = "GET", {}  # as browsers and requests do: the body is not resent
            else:
                kwargs.pop("params", None)  # the target URL carries its own query
        raise ApiRequestError(
            f"{call.method} {call.endpoint} was redirected more than {MAX_REDIRECTS} times; "
            f"check {BASE_URL_VARIABLE}"
        )

    def _redirect_target(self, call: Call, answer: Answer, url: str) -> str:
        location = answer.headers.get("Location")
        if answer.status not in REDIRECT_STATUSES or not location:
            raise ApiRequestError(
                f"{call.method} {call.endpoint} answered HTTP {answer.status} with no redirect "
                "to follow; nothing from this request was used"
            )
        target = urljoin(url, location)
        if not same_origin(target, self.base_url):
            # Never the whole target: its path and query may carry anything.
            raise ApiRequestError(
                f"{call.method} {call.endpoint} answered HTTP {answer.status}, a redirect to "
                f"{origin_of(target)}: not followed, since only {origin_of(self.base_url)} may "
                f"receive this request's credentials. Check that {BASE_URL_VARIABLE} is the "
                "API's own address (https://drchrono.com) and not a proxy that redirects"
            )
        return without_fragment(target)

    def _exchange(
        self,
        call: Call,
        method: str,
        url: str,
        headers: Mapping[str, str],
        auth: AuthBase | None,
        kwargs: Mapping[str, Any],
        ticket: str | None,
    ) -> Answer:
        """One HTTP request and its whole answer; transient failures raise ``TransientFailure``."""
        ticket = ticket or self.budget.acquire()
        try:
            # Streamed, so a body past the limit is never read whole; the body is read inside
            # the budget's ticket: a slot ages from the answer's end.
            response = self.session.request(
                method,
                url,
                headers=headers,
                auth=auth,
                timeout=(min(CONNECT_TIMEOUT_SECONDS, self.timeout_seconds), self.timeout_seconds),
                stream=True,
                allow_redirects=False,
                **kwargs,
            )
            self.reached.set()
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
            self.budget.release(ticket)
        # Outside the except block: requests' exceptions quote the URL, which may carry a cursor.
        if failure.transient:
            raise TransientFailure(failure.reason, unreachable=failure.unreachable)
        advice = WRITE_ADVICE if failure.write_may_be_applied else ""
        raise ApiRequestError(f"{call.method} {call.endpoint}: {failure.reason}{advice}")
