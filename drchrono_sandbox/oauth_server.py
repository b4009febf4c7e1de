"""OAuth 2.0 state of the sandbox: one client, authorization codes, access tokens
with expiry, and rotating single-use refresh tokens.

It behaves like drchrono's token endpoint: every refresh returns a NEW refresh token
and spends the old one, so a client that does not persist the rotated token is locked
out at its next refresh, exactly as with the real service.
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


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint answers."""

    access_token: str
    refresh_token: str
    expires_in: int
    scope: str

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


def _token() -> str:
    return secrets.token_urlsafe(24)


class OAuthState:
    """Clients, codes and tokens; thread-safe.

    The application's credentials, the initial refresh token and the access tokens'
    limits come from `config`. An access token expires `access_token_ttl` seconds after
    it is issued or, when `access_token_max_uses` is set, after that many accepted
    requests, whichever comes first. The token response announces only the TTL: like a
    revocation on the real service, a use limit is something a client cannot predict.
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
        self.scope = scope
        self.code_ttl = code_ttl
        self._clock = clock
        self._lock = threading.Lock()
        #: The refresh token a user starts with (random unless given).
        self.initial_refresh_token = config.refresh_token or _token()
        self._refresh_tokens: dict[str, str] = {self.initial_refresh_token: scope}
        self._spent_refresh_tokens: set[str] = set()
        self._access_tokens: dict[str, float] = {}
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

    def authorize(self, client_id: str, redirect_uri: str, scope: str | None = None) -> str:
        """Auto-approve an authorization request: a single-use code for the client."""
        if not self.known_client(client_id):
            raise OAuthError(400, "invalid_client", "Unknown client_id.")
        code = _token()
        with self._lock:
            self._codes[code] = _Code(
                client_id, redirect_uri, scope or self.scope, self._clock() + self.code_ttl
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
            return self._issue(grant.scope)

    def refresh(self, refresh_token: str) -> TokenGrant:
        """Rotate a refresh token: spend it and issue a new pair."""
        with self._lock:
            scope = self._refresh_tokens.pop(refresh_token, None)
            if scope is None:
                reused = refresh_token in self._spent_refresh_tokens
                raise OAuthError(
                    400,
                    "invalid_grant",
                    "Refresh token already used." if reused else "Unknown refresh token.",
                    reused=reused,
                )
            self._spent_refresh_tokens.add(refresh_token)
            return self._issue(scope)

    def _issue(self, scope: str) -> TokenGrant:
        access, refresh = _token(), _token()
        self._access_tokens[access] = self._clock() + self.access_token_ttl
        self._refresh_tokens[refresh] = scope
        return TokenGrant(access, refresh, int(self.access_token_ttl), scope)

    # Access tokens -----------------------------------------------------------------

    def check_access_token(self, token: str | None) -> str | None:
        """None if `token` is a live access token (using it up by one), else why not
        (the 401 detail)."""
        if not token:
            return "Authentication credentials were not provided."
        with self._lock:
            expires_at = self._access_tokens.get(token)
            if expires_at is None:
                return "Invalid token."
            max_uses = self.access_token_max_uses
            if expires_at <= self._clock() or (
                max_uses is not None and self._access_token_uses[token] >= max_uses
            ):
                return "Token expired."
            self._access_token_uses[token] += 1
        return None

    def revoke_access_tokens(self) -> int:
        """Invalidate every current access token; returns how many there were."""
        with self._lock:
            count = len(self._access_tokens)
            self._access_tokens.clear()
            self._access_token_uses.clear()
            return count
