"""OAuth 2.0 tokens for the drchrono API: refresh-token rotation shared through a token store.

A refresh spends the stored refresh token, so it runs under the store's lock; that lock is
held for one token request at most (its budget slot is taken before, retries back off after),
because every process of the practice waits on it. A refresh token drchrono issued is the
only one left: when the store cannot save it, it is saved again and again, and kept in memory
meanwhile, never dropped.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from drchrono_assets.api.shared_documents import TokenStoreError
from drchrono_assets.api.token_store import TokenSet, TokenStore, fingerprint
from drchrono_assets.errors import (
    LOGIN_COMMAND,
    ClientRejectedError,
    ConfigurationError,
    TokenRejectedError,
)

# Waits before each further try to save new tokens the store failed to save: a few seconds in
# all, which outlast a dropped connection or a failover, and hold no lock.
SAVE_RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0)
# While new tokens live only in memory, how often a request tries to save them again.
RESAVE_INTERVAL_SECONDS = 10.0
# An OAuth error code (RFC 6749, 5.2): quoted only if it looks like one.
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")


class TokenEndpoint(Protocol):
    """``/o/token/`` as the token manager uses it (``oauth_auth.HttpTokenEndpoint``)."""

    def reserve(self) -> str:
        """A request-budget slot for one token request, taken before the store's lock."""
        ...

    def cancel(self, ticket: str) -> None:
        """Give back a slot no request used (another process had refreshed)."""
        ...

    def post(self, form: Mapping[str, str], ticket: str) -> tuple[int, Any]:
        """One request in ``ticket``'s slot: (HTTP status, JSON body or None);
        ``TransientFailure`` when another try may succeed."""
        ...

    def retrying(self, attempt: Callable[[], TokenSet]) -> TokenSet:
        """``attempt``, again after each ``TransientFailure`` (with backoff) until retries
        run out."""
        ...


@dataclass(frozen=True)
class ClientCredentials:
    """The API application's credentials. ``repr`` never shows the secrets."""

    client_id: str
    client_secret: str = field(repr=False)
    seed_refresh_token: str | None = field(default=None, repr=False)
    # The practice whose tokens these are, named when it is not connected (None: the one).
    practice: str | None = None


@dataclass(frozen=True)
class _Grant:
    """A grant to ask for: its form (without the client's credentials) and token chain."""

    form: Mapping[str, str] = field(repr=False)
    seed: str | None


def refusal(grant_type: str, status: int, body: Any) -> TokenRejectedError:
    """Why the token endpoint refused a grant, from the ``error`` code of its answer.

    ``invalid_client`` is about the application's id and secret, checked before the grant:
    the refresh token or code was not used, and re-authorizing would not help.
    """
    error = body.get("error") if isinstance(body, Mapping) else None
    code = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None
    answered = f"HTTP {status}{f', {code}' if code else ''}"
    if code == "invalid_client":
        if grant_type == "refresh_token":
            doing, then = "refreshing the access token", "no re-authorization is needed"
        else:
            doing, then = f"for the {grant_type} grant", f"then run {LOGIN_COMMAND} again"
        return ClientRejectedError(
            f"drchrono rejected DRCHRONO_CLIENT_ID/DRCHRONO_CLIENT_SECRET ({answered} from "
            f"its token endpoint, {doing}): copy both again from the API application's page "
            f"in drchrono (Account > API); {then}"
        )
    if grant_type == "authorization_code":
        advice = (
            "the code is single-use and expires within minutes, and the redirect URI must "
            f"match the application's: run {LOGIN_COMMAND} again"
        )
    elif code == "invalid_grant":
        advice = (
            f"the refresh token is spent or revoked: re-authorize with {LOGIN_COMMAND} or set a "
            "new DRCHRONO_REFRESH_TOKEN"
        )
    else:
        advice = (
            "the refresh token may be spent or revoked, or DRCHRONO_CLIENT_ID/"
            f"DRCHRONO_CLIENT_SECRET wrong: check both, else re-authorize with {LOGIN_COMMAND}"
        )
    return TokenRejectedError(
        f"drchrono's token endpoint refused the {grant_type} grant ({answered}): {advice}"
    )


def _reason(error: BaseException) -> str:
    """Why a store failed, in a few words: never its message, which may quote values."""
    if isinstance(error, TokenStoreError):
        return error.reason
    if isinstance(error, OSError) and error.strerror:
        return f"{type(error).__name__}: {error.strerror}"
    return type(error).__name__


class TokenManager:
    """Hands out a valid access token, refreshing (once, across processes) when needed."""

    def __init__(
        self,
        credentials: ClientCredentials,
        store: TokenStore,
        endpoint: TokenEndpoint,
        log: logging.Logger | None = None,
    ) -> None:
        self._credentials = credentials
        self._store = store
        self._endpoint = endpoint
        self._log = log or logging.getLogger(__name__)
        self._lock = threading.Lock()
        self._tokens: TokenSet | None = None
        # Tokens drchrono issued that the store has not saved: newer than the stored ones.
        self._unsaved: TokenSet | None = None
        self._last_save_try = 0.0

    def access_token(self) -> str:
        if self._unsaved is not None:
            self._save_unsaved()
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
            tokens = self._endpoint.retrying(
                lambda: self._update_once(lambda stored: self._renewal(stored, rejected))
            )
            assert tokens.access_token is not None
            return tokens.access_token

    def exchange_code(self, code: str, redirect_uri: str) -> TokenSet:
        """Trade an authorization code for tokens and store them (the ``auth login`` flow)."""
        grant = _Grant(
            {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri},
            seed=None,
        )
        with self._lock:
            return self._endpoint.retrying(lambda: self._update_once(lambda _stored: grant))

    def _update_once(self, plan: Callable[[TokenSet | None], TokenSet | _Grant]) -> TokenSet:
        """One try: under the store's lock, ``plan`` keeps the stored tokens or asks for one
        grant, whose budget slot is taken before the lock."""
        ticket = self._endpoint.reserve()
        sent = False
        issued: TokenSet | None = None

        def change(stored: TokenSet | None) -> TokenSet:
            nonlocal sent, issued
            step = plan(self._unsaved or stored)  # unsaved ones replace a spent refresh token
            if isinstance(step, TokenSet):
                return step
            sent = True
            issued = self._grant(step, ticket)
            # In memory before the store writes them: if that fails, this is the only copy.
            self._tokens = self._unsaved = issued
            return issued

        failure: Exception | None = None
        try:
            tokens = self._store.update(change)
        except Exception as error:
            if issued is None:
                raise
            failure = error  # handled below, so no error of ours chains the store's
        finally:
            if not sent:
                self._endpoint.cancel(ticket)
        if failure is not None:
            assert issued is not None
            tokens = self._keep(issued, failure)
        self._tokens, self._unsaved = tokens, None
        return tokens

    def _keep(self, issued: TokenSet, failure: Exception) -> TokenSet:
        """Save new tokens the store failed to save: a few more tries, each on a new
        connection and outside the lock; if none succeeds they stay in ``_unsaved``."""
        location = self._store.location
        for delay in SAVE_RETRY_SECONDS:
            self._log.warning(
                f"could not save the new drchrono tokens to the token store {location} "
                f"({_reason(failure)}); trying again in {delay:g}s"
            )
            time.sleep(delay)
            try:
                self._store.save(issued)
            except Exception as error:
                failure = error
            else:
                self._log.info(f"saved the new drchrono tokens to the token store {location}")
                return issued
        self._last_save_try = time.monotonic()
        raise TokenStoreError(
            f"drchrono issued new tokens but the token store {location} could not save them "
            f"({_reason(failure)}, {len(SAVE_RETRY_SECONDS) + 1} tries): this process keeps "
            "using them and saves them once the store works, but other processes are refused "
            "until then, and if this process ends first the account must be re-authorized "
            f"({LOGIN_COMMAND}). Make the token store in "
            "DRCHRONO_TOKEN_STORE reachable and writable.",
            reason=_reason(failure),
        )

    def _save_unsaved(self) -> None:
        """Try again, now and then, to save tokens that only this process holds."""
        location = self._store.location
        with self._lock:
            unsaved = self._unsaved
            if unsaved is None or time.monotonic() - self._last_save_try < RESAVE_INTERVAL_SECONDS:
                return
            self._last_save_try = time.monotonic()
            try:
                self._store.save(unsaved)
            except Exception as error:
                self._log.warning(
                    f"the token store {location} still cannot save the new drchrono "
                    f"tokens ({_reason(error)}); this process keeps them in memory"
                )
                return
            self._unsaved = None
            self._log.info(f"saved the new drchrono tokens to the token store {location}")

    def _renewal(self, stored: TokenSet | None, rejected: str | None) -> TokenSet | _Grant:
        """The stored tokens if their access token is usable, else the refresh grant to ask."""
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
            practice = self._credentials.practice
            if practice is not None:
                raise ConfigurationError(
                    f"practice {practice} is not connected: run "
                    f"`drchrono-assets auth login {practice}`"
                )
            raise ConfigurationError(
                f"no drchrono refresh token: set DRCHRONO_REFRESH_TOKEN or run {LOGIN_COMMAND}"
            )
        return _Grant({"grant_type": "refresh_token", "refresh_token": refresh_token}, chain)

    def _grant(self, grant: _Grant, ticket: str) -> TokenSet:
        form = grant.form
        status, body = self._endpoint.post(
            {
                **form,
                "client_id": self._credentials.client_id,
                "client_secret": self._credentials.client_secret,
            },
            ticket,
        )
        if status != 200 or not isinstance(body, Mapping):
            raise refusal(form["grant_type"], status, body)
        try:
            return TokenSet(
                access_token=str(body["access_token"]),
                refresh_token=str(body["refresh_token"]),
                expires_at=time.time() + float(body.get("expires_in", 172800)),
                scope=body.get("scope"),
                seed=grant.seed,
            )
        except (KeyError, TypeError, ValueError):
            raise TokenRejectedError(
                "drchrono's token endpoint answered without an access and refresh token"
            ) from None
