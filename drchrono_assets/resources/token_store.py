"""Where rotated OAuth tokens live between processes.

drchrono refresh tokens are single-use: each refresh returns a new one and spends the old.
The store keeps the newest, and ``update`` runs a refresh under an exclusive lock so two
processes never spend the same refresh token.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import filelock
import sqlalchemy

from drchrono_assets.errors import ConfigurationError


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


class TokenStore(Protocol):
    """Persistent, process-safe home of a ``TokenSet``."""

    location: str  # for people: never contains a secret

    def load(self) -> TokenSet | None: ...

    def update(self, change: Callable[[TokenSet | None], TokenSet]) -> TokenSet:
        """Apply ``change`` to the stored tokens while no other process can, and save its result."""
        ...


class FileTokenStore:
    """A JSON file readable only by its owner, replaced atomically, guarded by a lock file."""

    def __init__(self, path: Path, lock_timeout_seconds: float = 120.0) -> None:
        self.path = path
        self.location = str(path)
        self._lock = filelock.FileLock(f"{path}.lock", timeout=lock_timeout_seconds)

    def load(self) -> TokenSet | None:
        try:
            raw = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return TokenSet(**json.loads(raw))
        except (ValueError, TypeError):
            raise ConfigurationError(
                f"token store {self.path} is not a valid token file; delete it and set "
                "DRCHRONO_REFRESH_TOKEN (or run `python -m drchrono_assets.auth login`)"
            ) from None

    def update(self, change: Callable[[TokenSet | None], TokenSet]) -> TokenSet:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            current = self.load()
            new = change(current)
            if new != current:
                self._write(new)
            return new

    def _write(self, tokens: TokenSet) -> None:
        # mkstemp creates the file 0600 in the same folder, so os.replace is an atomic rename.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(dataclasses.asdict(tokens), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class PostgresTokenStore:
    """A row in a PostgreSQL table, for runs in separate processes or pods sharing no disk.

    ``update`` holds the row lock (``SELECT ... FOR UPDATE``) while a refresh runs, so only
    one process spends a refresh token; the others wait, then read the new tokens.
    """

    TABLE = "drchrono_oauth_tokens"

    def __init__(self, url: str, key: str) -> None:
        self._engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
        self._key = key
        self._table_ready = False
        self.location = f"PostgreSQL table {self.TABLE} (key {key})"

    def load(self) -> TokenSet | None:
        with self._connect() as connection:
            row = connection.execute(
                sqlalchemy.text(f"SELECT tokens FROM {self.TABLE} WHERE store_key = :key"),
                {"key": self._key},
            ).first()
        return TokenSet(**row[0]) if row and row[0] else None

    def update(self, change: Callable[[TokenSet | None], TokenSet]) -> TokenSet:
        with self._connect() as connection, connection.begin():
            connection.execute(
                sqlalchemy.text(
                    f"INSERT INTO {self.TABLE} (store_key) VALUES (:key) ON CONFLICT DO NOTHING"
                ),
                {"key": self._key},
            )
            row = connection.execute(
                sqlalchemy.text(
                    f"SELECT tokens FROM {self.TABLE} WHERE store_key = :key FOR UPDATE"
                ),
                {"key": self._key},
            ).one()
            current = TokenSet(**row[0]) if row[0] else None
            new = change(current)
            if new != current:
                connection.execute(
                    sqlalchemy.text(
                        f"UPDATE {self.TABLE} SET tokens = CAST(:tokens AS jsonb), "
                        "updated_at = now() WHERE store_key = :key"
                    ),
                    {"key": self._key, "tokens": json.dumps(dataclasses.asdict(new))},
                )
            return new

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlalchemy.Connection]:
        try:
            connection = self._engine.connect()
        except sqlalchemy.exc.SQLAlchemyError as error:
            failure = type(error.orig or error).__name__
        else:
            with connection:
                if not self._table_ready:
                    connection.execute(
                        sqlalchemy.text(
                            f"CREATE TABLE IF NOT EXISTS {self.TABLE} (store_key text "
                            "PRIMARY KEY, tokens jsonb, updated_at timestamptz NOT NULL "
                            "DEFAULT now())"
                        )
                    )
                    connection.commit()
                    self._table_ready = True
                yield connection
            return
        # Outside the except block: the driver's message would include the URL's password.
        raise ConfigurationError(f"cannot reach the token store database ({failure})")


def open_token_store(location: str, key: str) -> TokenStore:
    """A PostgreSQL store for a ``postgresql+psycopg2://`` URL, else a file at that path."""
    if location.startswith("postgresql"):
        return PostgresTokenStore(location, key)
    return FileTokenStore(Path(location).expanduser())
