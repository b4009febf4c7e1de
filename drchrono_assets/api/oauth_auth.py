"""OAuth 2.0 on the wire: ``/o/token/`` for the token manager, and the bearer token on every
API request as a ``requests`` auth (as dlt's ``rest_client`` auths are).

Dependencies run one way: the client signs its requests with ``OAuthBearer``, which asks the
``TokenManager`` (``oauth_tokens``) for tokens; the manager keeps them in the token store and
asks ``/o/token/`` through ``HttpTokenEndpoint``, which sends on the transport in a slot of
the request budget and retries with ``Retries``. None of them knows the client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.auth import AuthBase

from drchrono_assets.api.answers import Answer, TransientFailure
from drchrono_assets.api.oauth_tokens import TokenManager
from drchrono_assets.api.outcomes import Outcomes
from drchrono_assets.api.retries import Retries
from drchrono_assets.api.token_store import TokenSet
from drchrono_assets.api.transport import Call, Transport

TOKEN_ENDPOINT = "/o/token/"
# After a 401, how many times to refresh and resend before backing off like any failure.
MAX_REFRESHES_PER_REQUEST = 3


class HttpTokenEndpoint:
    """``/o/token/`` for the token manager (``oauth_tokens.TokenEndpoint``): one attempt in
    a budget slot taken before the token lock, retried outside that lock with the client's
    backoff. ``url``: the endpoint's absolute URL."""

    def __init__(
        self, transport: Transport, outcomes: Outcomes, retries: Retries, url: str
    ) -> None:
        self._transport = transport
        self._outcomes = outcomes
        self._retries = retries
        self._url = url

    def reserve(self) -> str:
        """A request-budget slot for one token request."""
        return self._transport.budget.acquire()

    def cancel(self, ticket: str) -> None:
        """Give back a slot no request used."""
        self._transport.budget.cancel(ticket)

    def post(self, form: Mapping[str, str], ticket: str) -> tuple[int, Any]:
        """One request in ``ticket``'s slot: (HTTP status, JSON body or None)."""
        call = self._call({"data": dict(form)})
        return self._outcomes.read(call, self._transport.send(call, None, ticket))

    def retrying(self, attempt: Callable[[], TokenSet]) -> TokenSet:
        """``attempt``, again after each ``TransientFailure`` until retries run out."""
        return self._retries.run(self._call({}), attempt)

    def _call(self, kwargs: Mapping[str, Any]) -> Call:
        # Not ``auth``: the form carries the client secret; a token grant is safe to repeat.
        return Call("POST", self._url, TOKEN_ENDPOINT, auth=False, kwargs=kwargs)


class OAuthBearer(AuthBase):
    """Signs a request with the token manager's access token (``Authorization: Bearer``);
    ``send`` refreshes it when the API refuses it. Shared by a client's threads."""

    def __init__(self, tokens: TokenManager) -> None:
        self.tokens = tokens
        # The token each thread last signed with: the one a 401 refused.
        self._signed = threading.local()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.tokens.access_token()
        self._signed.token = token
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    def send(self, transport: Transport, call: Call) -> Answer:
        """``call``'s answer, signed; on 401, a refreshed token and another send (bounded).

        A token another thread or process refreshed may already be spent or expired when we
        use it: that is no reason to fail. A 401 that outlasts several refreshes is retried
        like any transient failure and reported as a rejected token only when retries run out.
        """
        # Refreshed here if need be, before the transport takes the request's budget slot:
        # a refresh takes a slot of its own and may wait for the token lock.
        self.tokens.access_token()
        answer = transport.send(call, self)
        for _ in range(MAX_REFRESHES_PER_REQUEST):
            if answer.status != 401:
                return answer
            self.tokens.refresh(rejected=self._signed.token)
            answer = transport.send(call, self)
        if answer.status == 401:
            raise TransientFailure(
                f"HTTP 401 with {MAX_REFRESHES_PER_REQUEST} freshly refreshed access tokens",
                token_refused=True,
            )
        return answer
