"""Where rotated OAuth tokens live between processes.

drchrono refresh tokens are single-use: each refresh returns a new one and spends the old.
The store keeps the newest, and ``update`` runs a refresh under an exclusive lock so two
processes never spend the same refresh token.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import filelock

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

    def load(self) -> TokenSet | None: ...

    def update(self, change: Callable[[TokenSet | None], TokenSet]) -> TokenSet:
        """Apply ``change`` to the stored tokens while no other process can, and save its result."""
        ...


class FileTokenStore:
    """A JSON file readable only by its owner, replaced atomically, guarded by a lock file."""

    def __init__(self, path: Path, lock_timeout_seconds: float = 120.0) -> None:
        self.path = path
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
