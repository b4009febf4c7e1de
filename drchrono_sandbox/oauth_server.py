"""OAuth 2.0 state of the sandbox: one client, authorization codes, access tokens
with expiry, and rotating single-use refresh tokens.

It behaves like drchrono's token endpoint: every refresh returns a NEW refresh token
and spends the old one, so a client that does not persist the rotated token is locked
out at its next refresh, exactly as with the real service.

One application, several practices (`SandboxConfig.practices`), as drchrono connects a
billing company's application to many: every grant belongs to one practice. The
authorization request picks it with a `practice` query parameter, its index
(`/o/authorize/?...&practice=1`; default 0, the first practice; an unknown one is
redirected back as `error=invalid_request`), standing for the practice whose user
approves the application. The code, the access tokens and every refresh token rotated
from it keep that practice, and the API serves each request from its access token's
practice. The initial refresh token (`config.refresh_token`) is practice 0's. Each
practice's refresh chain rotates on its own: spending one practice's refresh token
never touches another's.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from drchrono_sandbox.config import DEFAULTS, SandboxConfig

DEFAULT_SCOPE = (
    "user:read calendar:read calendar:write patients:read patients:write "
    "patients:summary:read billing:read clinical:read"
)
#: Authorization codes "expire extremely quickly": a minute here.
CODE_TTL_SECONDS = 60.0


class OAuthError(Exception):
    """A token endpoint error, answered as `{"error": ...}` with `status`."""

    def __init__(self, status: int, error: str, description: str = "", *, reused: bool = False):
        super().__init__(f"{error}: {description}" if description else error)
        self.status = status
        self.error = error
        self.description = description
        #: True when a spent refresh token was presented again.
        self.reused = reused


class InvalidAccessToken(Exception):
    """An API request's bearer token is missing, unknown or expired: answered 401 with
    `detail`."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint answers, and the practice the tokens belong to (which the
    answer does not show)."""

    access_token: str
    refresh_token: str
    expires_in: int
    scope: str
    practice: int = 0

    def as_json(self) -> dict[str, str | int]:
        """The token response body."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }


@dataclass(frozen=True)
class _Code:
    client_id: str
    redirect_uri: str
    scope: str
    expires_at: float
    practice: int


@dataclass(frozen=True)
class _Refresh:
    """What a live refresh token grants: its scope, in its practice."""

    scope: str
    practice: int


@dataclass(frozen=True)
class _Access:
    """A live access token's expiry (on `OAuthState`'s clock) and practice."""

    expires_at: float
    practice: int


def _token() -> str:
    return secrets.token_urlsafe(24)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (None: no bearer token)."""
    scheme, _, token = (authorization or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


class OAuthState:
    """Clients, codes and tokens; thread-safe.

    The application's credentials, the initial refresh token and the access tokens'
    limits come from `config`. An access token expires `access_token_ttl` seconds after
    it is issued or, when `access_token_max_uses` is set, after that many accepted
    requests, whichever comes first. The token response announces only the TTL: like a
    revocation on the real service, a use limit is something a client cannot predict.
    Grants belong to one of `config.practices` practices (see the module).
    """

    def __init__(
        self,
        config: SandboxConfig = DEFAULTS,
        *,
        scope: str = DEFAULT_SCOPE,
        code_ttl: float = CODE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if config.access_token_max_uses is not None and config.access_token_max_uses < 1:
            raise ValueError("access_token_max_uses must be >= 1")
        self.client_id = config.client_id
        self.client_secret = config.client_secret
        self.access_token_ttl = config.access_token_ttl
        self.access_token_max_uses = config.access_token_max_uses
        self.practices = config.practices
        self.scope = scope
        self.code_ttl = code_ttl
        self._clock = clock
        self._lock = threading.Lock()
        #: The refresh token a user of practice 0 starts with (random unless given).
        self.initial_refresh_token = config.refresh_token or _token()
        self._refresh_tokens: dict[str, _Refresh] = {self.initial_refresh_token: _Refresh(scope, 0)}
        self._spent_refresh_tokens: set[str] = set()
        self._access_tokens: dict[str, _Access] = {}
        self._access_token_uses: Counter[str] = Counter()
        self._codes: dict[str, _Code] = {}
        self._spent_codes: set[str] = set()

    # Clients ---------------------------------------------------------------------

    def known_client(self, client_id: str | None) -> bool:
        """Whether `client_id` names the sandbox's application."""
        return client_id is not None and secrets.compare_digest(client_id, self.client_id)

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        """Raise 401 `invalid_client` unless the credentials are the application's."""
        if not (
            self.known_client(client_id)
            and client_secret is not None
            and secrets.compare_digest(client_secret, self.client_secret)
        ):
            raise OAuthError(401, "invalid_client", "Client authentication failed.")

    # Grants --------------------------------------------------------------------------

    def practice_index(self, value: str | None) -> int:
        """The practice an authorization request's `practice` parameter names (None: 0);
        400 `invalid_request` unless it is the index of one of the sandbox's practices."""
        if value is None:
            return 0
        if not value.isdecimal() or int(value) >= self.practices:
            raise OAuthError(400, "invalid_request", f"Unknown practice {value!r}.")
        return int(value)

    def authorize(
        self, client_id: str, redirect_uri: str, scope: str | None = None, practice: int = 0
    ) -> str:
        """Auto-approve an authorization request, as the user of `practice` would: a
        single-use code for the client."""
        if not self.known_client(client_id):
            raise OAuthError(400, "invalid_client", "Unknown client_id.")
        if not 0 <= practice < self.practices:
            raise OAuthError(400, "invalid_request", f"Unknown practice {practice}.")
        code = _token()
        with self._lock:
            self._codes[code] = _Code(
                client_id,
                redirect_uri,
                scope or self.scope,
                self._clock() + self.code_ttl,
                practice,
            )
        return code

    def exchange_code(self, code: str, redirect_uri: str | None) -> TokenGrant:
        """Trade an authorization code (once, within its lifetime) for tokens."""
        with self._lock:
            grant = self._codes.pop(code, None)
            if grant is None:
                used = code in self._spent_codes
                raise OAuthError(400, "invalid_grant", "Code already used." if used else "")
            self._spent_codes.add(code)
            if grant.expires_at < self._clock():
                raise OAuthError(400, "invalid_grant", "Code expired.")
            if redirect_uri != grant.redirect_uri:
                raise OAuthError(400, "invalid_grant", "Mismatching redirect URI.")
            return self._issue(grant.scope, grant.practice)

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Rotate a refresh token: spend it and issue a new pair, of its practice."""
        with self._lock:
            grant = self._refresh_tokens.pop(refresh_token, None)
            if grant is None:
                reused = refresh_token in self._spent_refresh_tokens
                raise OAuthError(
                    400,
                    "invalid_grant",
                    "Refresh token already used." if reused else "Unknown refresh token.",
                    reused=reused,
                )
            self._spent_refresh_tokens.add(refresh_token)
            return self._issue(grant.scope, grant.practice)

    def _issue(self, scope: str, practice: int) -> TokenGrant:
        access, refresh = _token(), _token()
        self._access_tokens[access] = _Access(self._clock() + self.access_token_ttl, practice)
        self._refresh_tokens[refresh] = _Refresh(scope, practice)
        return TokenGrant(access, refresh, int(self.access_token_ttl), scope, practice)

    # Access tokens -----------------------------------------------------------------

    def use_access_token(self, token: str | None) -> int:
        """The practice of a live access token, using it up by one; `InvalidAccessToken`
        (with the 401 detail) unless `token` is one."""
        if not token:
            raise InvalidAccessToken("Authentication credentials were not provided.")
        with self._lock:
            access = self._access_tokens.get(token)
            if access is None:
                raise InvalidAccessToken("Invalid token.")
            max_uses = self.access_token_max_uses
            if access.expires_at <= self._clock() or (
                max_uses is not None and self._access_token_uses[token] >= max_uses
            ):
                raise InvalidAccessToken("Token expired.")
            self._access_token_uses[token] += 1
            return access.practice

    def check_access_token(self, token: str | None) -> str | None:
        """None if `token` is a live access token (using it up by one), else why not
        (the 401 detail)."""
        try:
            self.use_access_token(token)
        except InvalidAccessToken as error:
            return error.detail
        return None

    def practice_of(self, token: str | None) -> int | None:
        """The practice an access token was issued for, live or expired, without using it
        (None: never issued, or revoked)."""
        with self._lock:
            access = self._access_tokens.get(token) if token else None
            return access.practice if access is not None else None

    def revoke_access_tokens(self) -> int:
        """Invalidate every current access token; returns how many there were."""
        with self._lock:
            count = len(self._access_tokens)
            self._access_tokens.clear()
            self._access_token_uses.clear()
            return count
