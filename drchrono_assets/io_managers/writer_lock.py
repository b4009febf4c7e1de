"""One writer at a time per asset, across threads, processes and machines.

A run that merges changes reads stored days, merges and writes them back; a backfill started
from the UI meanwhile must not be overwritten by that write (a lost update). Every write of
an asset's files therefore holds the asset's lock, on whatever instance the code runs:

- on a local data root, a lock file (``fcntl``: released by the OS if the process dies),
  owner-only in a folder of the ``AtRest`` mode;
- on object storage, a lease object created only if absent (S3 ``If-None-Match: *``); a
  holder that died leaves it behind, so it expires after ``LEASE_SECONDS``. It is written
  with the storage options of ``root`` (its server-side encryption), like every object.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator

import filelock
from upath import UPath

from drchrono_assets import settings
from drchrono_assets.io_managers.at_rest import LOCK_FILE_MODE, PRIVATE, AtRest

LOCKS_FOLDER = ".locks"  # beside the datasets, never inside one
# Longer than any write of a year's files to object storage; a dead holder's lease is
# taken over after this.
LEASE_SECONDS = 3600.0
WAIT_SECONDS = 4 * 3600.0  # a writer waits at most this long for another to finish
POLL_SECONDS = 1.0


@contextlib.contextmanager
def writer_lock(
    root: UPath, name: str, at_rest: AtRest = PRIVATE, *, wait_seconds: float = WAIT_SECONDS
) -> Iterator[None]:
    """Hold the writer lock of asset ``name`` under the data root ``root``."""
    path = root / LOCKS_FOLDER / f"{name}.lock"
    if settings.is_local(root):
        at_rest.make_folders(path.parent)
        try:
            # filelock sets an explicit mode on the file it creates, whatever the umask.
            with filelock.FileLock(path.path, timeout=wait_seconds, mode=LOCK_FILE_MODE):
                yield
        except filelock.Timeout:
            raise _timed_out(name, path, wait_seconds) from None
        return
    with _lease(path, name, wait_seconds):
        yield


@contextlib.contextmanager
def _lease(path: UPath, name: str, wait_seconds: float) -> Iterator[None]:
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + wait_seconds
    while True:
        body = json.dumps({"owner": owner, "expires": time.time() + LEASE_SECONDS})
        try:
            path.fs.pipe_file(path.path, body.encode(), mode="create")
            break
        except FileExistsError:
            _remove_if_expired(path)
        if time.monotonic() > deadline:
            raise _timed_out(name, path, wait_seconds)
        time.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            if json.loads(path.read_bytes()).get("owner") == owner:
                path.unlink()


def _remove_if_expired(path: UPath) -> None:
    try:
        lease = json.loads(path.read_bytes())
    except FileNotFoundError:
        return  # released meanwhile: try again
    except ValueError:
        lease = {}  # half a lease is nobody's
    if lease.get("expires", 0) < time.time():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _timed_out(name: str, path: UPath, wait_seconds: float) -> TimeoutError:
    return TimeoutError(
        f"{name}: another writer held the asset's lock ({path}) for over {wait_seconds:.0f} s; "
        "nothing was written. Wait for the other run to finish and re-run this one"
    )
