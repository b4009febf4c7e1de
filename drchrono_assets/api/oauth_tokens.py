"""OAuth 2.0 tokens for the drchrono API: refresh-token rotation shared through a token store."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drchrono_assets.api.token_store import TokenSet, TokenStore, fingerprint
from drchrono_assets.errors import ConfigurationError, TokenRejectedError

# Posts a form to the token endpoint and returns (HTTP status, parsed JSON body or None).
TokenEndpoint = Callable[[Mapping[str, str]], tuple[int, Any]]


@dataclass(frozen=True)
class ClientCredentials:
    """The API application's credentials. ``repr`` never shows the secrets."""

    client_id: str
    client_secret: str = field(repr=False)
    seed_refresh_token: str | None = field(default=None, repr=False)


class TokenManager:
    """Hands out a valid access token, refreshing (once, across processes) when needed."""

    def __init__(
        self, credentials: ClientCredentials, store: TokenStore, post_token: TokenEndpoint
    ) -> None:
        self._credentials = credentials
        self._store = store
        self._post_token = post_token
        self._lock = threading.Lock()
        self._tokens: TokenSet | None = None

    def access_token(self) -> str:
        tokens = self._tokens
        if tokens is None or not tokens.access_token_valid():
            return self.refresh(rejected=None)
        assert tokens.access_token is not None
        return tokens.access_token

    def refresh(self, rejected: str | None) -> str:
        """A fresh access token; ``rejected`` is the one the API just refused, if any.

        Under the store's lock another process may already have refreshed: then its token is
        used and no refresh token is spent.
        """
        with self._lock:
            current = self._tokens
            if (
                current is not None
                and current.access_token != rejected
                and current.access_token_valid()
            ):
                return current.access_token  # another thread of this process refreshed
            self._tokens = self._store.update(lambda stored: self._renew(stored, rejected))
            assert self._tokens.access_token is not None
            return self._tokens.access_token

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Trade an authorization code for tokens and store them (the ``auth login`` flow)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        with self._lock:
            self._tokens = self._store.update(lambda _stored: self._grant(form, seed=None))
            return self._tokens

    def _renew(self, stored: TokenSet | None, rejected: str | None) -> TokenSet:
        seed = self._credentials.seed_refresh_token
        if stored is not None and seed and stored.seed not in (None, fingerprint(seed)):
            stored = None  # DRCHRONO_REFRESH_TOKEN changed: the stored chain is an older grant
        if stored is not None and stored.access_token != rejected and stored.access_token_valid():
            return stored
        if stored is not None:
            refresh_token, chain = stored.refresh_token, stored.seed
        elif seed:
            refresh_token, chain = seed, fingerprint(seed)
        else:
            raise ConfigurationError(
                "no drchrono refresh token: set DRCHRONO_REFRESH_TOKEN or run "
                "`python -m drchrono_assets.auth login`"
            )
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        return self._grant(form, seed=chain)

    def _grant(self, form: Mapping[str, str], seed: str | None) -> TokenSet:
        status, body = self._post_token(
            {
                **form,
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
            }
        )
        if status != 200 or not isinstance(body, Mapping):
            error = body.get("error") if isinstance(body, Mapping) else None
            if form["grant_type"] == "authorization_code":
                advice = (
                    "The code is single-use and expires within minutes, and the redirect URI "
                    "must match the application's: run `python -m drchrono_assets.auth login` "
                    "again."
                )
            else:
                advice = (
                    "The refresh token may be spent or revoked, or the client id/secret wrong: "
                    "re-authorize with `python -m drchrono_assets.auth login` or set a new "
                    "DRCHRONO_REFRESH_TOKEN."
                )
            raise TokenRejectedError(
                f"drchrono's token endpoint refused the {form['grant_type']} grant "
                f"(HTTP {status}{f', {error}' if isinstance(error, str) else ''}). {advice}"
            )
        try:
            return TokenSet(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_at=time.time() + float(body.get("expires_in", 172800)),
                scope=body.get("scope"),
                seed=seed,
            )
        except (KeyError, TypeError, ValueError):
            raise TokenRejectedError(
                "drchrono's token endpoint answered without an access and refresh token"
            ) from None
