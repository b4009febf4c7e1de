"""Small JSON documents that every process of a practice reads and changes under one lock.

The rotated OAuth tokens and the request ledger are such documents: a file guarded by a lock
file on one machine, or a row of a PostgreSQL table for pods that share no disk. ``update``
runs a change while no other thread or process can, and saves its result.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import filelock
import sqlalchemy

from drchrono_assets.errors import LOGIN_COMMAND, ConfigurationError
from drchrono_assets.folders import make_folders

JsonValue = Any
Change = Callable[[JsonValue | None], JsonValue]
T = TypeVar("T")
STORE_VARIABLE = "DRCHRONO_TOKEN_STORE"


class TokenStoreError(ConfigurationError):
    """The token store (or the request ledger beside it) could not be read or written.

    ``reason`` says why in a few words (an error type), never quoting a value.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class SharedDocument(Protocol):
    """A JSON value shared by threads and processes."""

    location: str  # for people: never contains a secret

    def load(self) -> JsonValue | None: ...

    def update(self, change: Change) -> JsonValue:
        """Apply ``change`` to the stored value while no one else can, and save its result."""
        ...


class MemoryDocument:
    """A document shared by the threads of one process only (unit tests, scripts)."""

    location = "memory"

    def __init__(self) -> None:
        self._value: JsonValue | None = None
        self._lock = threading.Lock()

    def load(self) -> JsonValue | None:
        return self._value

    def update(self, change: Change) -> JsonValue:
        with self._lock:
            self._value = change(self._value)
            return self._value


class FileDocument:
    """A JSON file readable only by its owner, replaced atomically, guarded by a lock file.

    ``durable`` documents are flushed to disk before they replace the old one (tokens: losing
    a rotated refresh token locks the practice out); others are not (the request ledger).
    A ``disposable`` document that is not valid JSON reads as empty, with a warning on
    ``log``, and the next ``update`` replaces it (the ledger only counts requests); any other
    raises, so a damaged token file is never thrown away.
    """

    def __init__(
        self,
        path: Path,
        *,
        durable: bool = True,
        disposable: bool = False,
        log: logging.Logger | None = None,
        lock_timeout_seconds: float = 120.0,
        kind: str = "shared file",
    ) -> None:
        self.path = path
        self.location = str(path)
        self.kind = kind  # what the file is, for messages: "token store", "request ledger"
        self._durable = durable
        self._disposable = disposable
        self._log = log or logging.getLogger(__name__)
        # Threads of one process queue here instead of polling the lock file.
        self._thread_lock = threading.Lock()
        self._file_lock = filelock.FileLock(
            f"{path}.lock", timeout=lock_timeout_seconds, mode=0o600, poll_interval=0.002
        )

    def load(self) -> JsonValue | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            # Bytes: junk that is not UTF-8 is a ValueError here too, not a crash in reading.
            return json.loads(raw)
        except ValueError:
            pass
        if self._disposable:
            # The path only: the content may be anything.
            self._log.warning(f"{self.path} is not valid JSON; starting it afresh")
            return None
        raise ConfigurationError(
            f"{self.path} is not valid JSON; delete it (a token file: then set "
            f"DRCHRONO_REFRESH_TOKEN or run {LOGIN_COMMAND})"
        )

    def update(self, change: Change) -> JsonValue:
        make_folders(self.path.parent, 0o700)  # tokens: the owner's alone
        with self._thread_lock:
            try:
                self._file_lock.acquire()
            except filelock.Timeout:
                pass  # raised below, outside this block: one error, not filelock's as well
            else:
                try:
                    current = self.load()
                    new = change(current)
                    if new != current:
                        self._write(new)
                    return new
                finally:
                    self._file_lock.release()
        # A process that dies releases its lock: the holder is alive, and stuck.
        raise TokenStoreError(
            f"the {self.kind} {self.path} stayed locked by another process for "
            f"{self._file_lock.timeout:g} s (lock file {self.path}.lock): stop the stuck "
            "drchrono_assets process holding it; if none is running, the folder's file system "
            f"may not support file locks (some network file systems): set {STORE_VARIABLE} to "
            "a local path or a PostgreSQL database",
            reason="lock timeout",
        )

    def _write(self, value: JsonValue) -> None:
        # mkstemp creates the file 0600 in the same folder, so os.replace is an atomic rename.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                # One string: json.dump streams through the pure-Python encoder, 10x slower.
                handle.write(json.dumps(value))
                if self._durable:
                    handle.flush()
                    os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


@functools.cache
def _engine(url: str) -> sqlalchemy.Engine:
    """One connection pool per database URL, shared by the token store and the ledger."""
    # hide_parameters: SQLAlchemy's errors would otherwise quote the values, tokens among them.
    return sqlalchemy.create_engine(url, pool_pre_ping=True, hide_parameters=True)


# Any fixed number: it names the lock that serializes CREATE TABLE across processes.
_CREATE_TABLE_LOCK = 0x64726368726F6E6F


class PostgresDocument:
    """A row of a PostgreSQL table, for processes or pods sharing no disk.

    ``update`` holds the row lock (``SELECT ... FOR UPDATE``) while the change runs, so the
    others wait, then see its result.
    """

    def __init__(self, url: str, table: str, column: str, key: str) -> None:
        self._engine = _engine(url)
        self._table = table
        self._column = column
        self._key = key
        self._table_ready = False
        self.location = f"PostgreSQL table {table} (key {key})"

    def load(self) -> JsonValue | None:
        return self._run("read", self._load)

    def update(self, change: Change) -> JsonValue:
        return self._run("updated", lambda connection: self._update(connection, change))

    def _load(self, connection: sqlalchemy.Connection) -> JsonValue | None:
        row = connection.execute(
            sqlalchemy.text(f"SELECT {self._column} FROM {self._table} WHERE store_key = :key"),
            {"key": self._key},
        ).first()
        return row[0] if row else None

    def _update(self, connection: sqlalchemy.Connection, change: Change) -> JsonValue:
        with connection.begin():
            connection.execute(
                sqlalchemy.text(
                    f"INSERT INTO {self._table} (store_key) VALUES (:key) ON CONFLICT DO NOTHING"
                ),
                {"key": self._key},
            )
            (current,) = connection.execute(
                sqlalchemy.text(
                    f"SELECT {self._column} FROM {self._table} WHERE store_key = :key FOR UPDATE"
                ),
                {"key": self._key},
            ).one()
            new = change(current)
            if new != current:
                connection.execute(
                    sqlalchemy.text(
                        f"UPDATE {self._table} SET {self._column} = CAST(:value AS jsonb), "
                        "updated_at = now() WHERE store_key = :key"
                    ),
                    {"key": self._key, "value": json.dumps(new)},
                )
            return new

    def _run(self, action: str, work: Callable[[sqlalchemy.Connection], T]) -> T:
        """``work`` on a pooled connection; a database failure is one ``TokenStoreError``."""
        connection = self._open()
        try:
            with connection:
                try:
                    if not self._table_ready:
                        self._create_table(connection)
                    return work(connection)
                except sqlalchemy.exc.SQLAlchemyError:
                    # It may be dead or mid-transaction: the next try gets a new connection.
                    with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                        connection.invalidate()
                    raise
        except sqlalchemy.exc.SQLAlchemyError as error:
            reason = _failure(error)
        # Outside the except block: the driver's message may quote the statement.
        raise TokenStoreError(
            f"{self.location} could not be {action} ({reason}): check that the database in "
            f"{STORE_VARIABLE} is reachable and accepts writes",
            reason=reason,
        )

    def _open(self) -> sqlalchemy.Connection:
        try:
            return self._engine.connect()
        except sqlalchemy.exc.SQLAlchemyError as error:
            reason = _failure(error)
        # Outside the except block: the driver's message would include the URL's password.
        raise TokenStoreError(f"cannot reach the token store database ({reason})", reason)

    def _create_table(self, connection: sqlalchemy.Connection) -> None:
        # CREATE TABLE IF NOT EXISTS is not safe when several processes run it on a fresh
        # database (they race on the catalog's type row): take turns under an advisory lock.
        with connection.begin():
            connection.execute(
                sqlalchemy.text("SELECT pg_advisory_xact_lock(:lock)"),
                {"lock": _CREATE_TABLE_LOCK},
            )
            connection.execute(
                sqlalchemy.text(
                    f"CREATE TABLE IF NOT EXISTS {self._table} (store_key text PRIMARY KEY, "
                    f"{self._column} jsonb, updated_at timestamptz NOT NULL DEFAULT now())"
                )
            )
        self._table_ready = True


def _failure(error: sqlalchemy.exc.SQLAlchemyError) -> str:
    """The driver's error type (``OperationalError``): its message may quote values."""
    return type(getattr(error, "orig", None) or error).__name__
