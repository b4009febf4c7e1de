"""Where rotated OAuth tokens live between processes.

drchrono refresh tokens are single-use: each refresh returns a new one and spends the old.
The store keeps the newest, and ``update`` runs a refresh under an exclusive lock so two
processes never spend the same refresh token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

from drchrono_assets.api.shared_documents import FileDocument, PostgresDocument, SharedDocument
from drchrono_assets.errors import LOGIN_COMMAND, ConfigurationError


def fingerprint(secret: str) -> str:
    """A one-way tag for a secret, safe to store and compare."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class TokenSet:
    """The tokens of one connected drchrono account. ``repr`` never shows a token."""

    refresh_token: str = dataclasses.field(repr=False)
    access_token: str | None = dataclasses.field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds
    scope: str | None = None
    # Fingerprint of the DRCHRONO_REFRESH_TOKEN this chain of rotations started from, so a
    # newly configured refresh token is not shadowed by an older chain's stored one.
    seed: str | None = None

    def access_token_valid(self, margin_seconds: float = 60.0) -> bool:
        return bool(self.access_token) and (
            self.expires_at is None or self.expires_at - margin_seconds > time.time()
        )


class TokenStore:
    """The ``TokenSet`` of one API application in a shared document."""

    def __init__(self, document: SharedDocument) -> None:
        self.document = document
        self.location = document.location

    def load(self) -> TokenSet | None:
        return self._tokens(self.document.load())

    def update(self, change: Callable[[TokenSet | None], TokenSet]) -> TokenSet:
        """Apply ``change`` to the stored tokens while no other process can, and save its result."""
        stored = self.document.update(lambda value: dataclasses.asdict(change(self._tokens(value))))
        return TokenSet(**stored)

    def save(self, tokens: TokenSet) -> None:
        """Store ``tokens`` over whatever is stored: the newest drchrono issued, which an
        earlier ``update`` could not save (the refresh token they replace is spent)."""
        self.document.update(lambda _value: dataclasses.asdict(tokens))

    def _tokens(self, value: object) -> TokenSet | None:
        if not value:
            return None
        try:
            return TokenSet(**value)  # type: ignore[arg-type]
        except TypeError:
            raise ConfigurationError(
                f"token store {self.location} does not hold drchrono tokens; delete it and set "
                f"DRCHRONO_REFRESH_TOKEN (or run {LOGIN_COMMAND})"
            ) from None


class FileTokenStore(TokenStore):
    """A token file readable only by its owner, replaced atomically, guarded by a lock file."""

    def __init__(self, path: Path, *, lock_timeout_seconds: float = 120.0) -> None:
        super().__init__(
            FileDocument(
                path, durable=True, lock_timeout_seconds=lock_timeout_seconds, kind="token store"
            )
        )
        self.path = path


class PostgresTokenStore(TokenStore):
    """A row of a PostgreSQL table, for runs in processes or pods sharing no disk."""

    TABLE = "drchrono_oauth_tokens"

    def __init__(self, url: str, key: str) -> None:
        super().__init__(PostgresDocument(url, self.TABLE, "tokens", key))


def is_database_url(location: str) -> bool:
    """Whether ``DRCHRONO_TOKEN_STORE`` names a PostgreSQL database rather than a file."""
    return location.startswith("postgresql")


def open_token_store(location: str, key: str) -> TokenStore:
    """A PostgreSQL store for a ``postgresql+psycopg2://`` URL, else a file at that path."""
    if is_database_url(location):
        return PostgresTokenStore(location, key)
    return FileTokenStore(Path(location).expanduser())
