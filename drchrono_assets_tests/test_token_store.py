"""Unit tests: the file token store is private, atomic and serializes refreshes."""

import json
import logging
import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest

from drchrono_assets.api.rate_budget import RequestBudget, open_request_ledger
from drchrono_assets.api.token_store import FileTokenStore, TokenSet
from drchrono_assets.errors import ConfigurationError


def test_store_is_owner_only_and_leaves_no_partial_files(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens" / "store.json")
    store.update(lambda _: TokenSet(refresh_token="r1", access_token="a1", expires_at=1e12))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700
    assert sorted(p.name for p in store.path.parent.iterdir()) == ["store.json", "store.json.lock"]
    assert store.load() == TokenSet(refresh_token="r1", access_token="a1", expires_at=1e12)


def test_token_set_repr_shows_no_token() -> None:
    text = repr(TokenSet(refresh_token="SECRET-R", access_token="SECRET-A"))
    assert "SECRET" not in text


def _increment(path: str) -> None:
    store = FileTokenStore(Path(path))

    def bump(current: TokenSet | None) -> TokenSet:
        n = int(current.refresh_token) if current else 0
        time.sleep(0.01)  # widen the race window
        return TokenSet(refresh_token=str(n + 1))

    for _ in range(10):
        store.update(bump)


def test_updates_from_several_processes_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    processes = [multiprocessing.Process(target=_increment, args=(str(path),)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    assert json.loads(path.read_text())["refresh_token"] == "40"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folders_token_file_and_request_ledger_are_private_under_umask_zero(
    tmp_path: Path,
) -> None:
    token_path = tmp_path / "a" / "b" / "tokens.json"
    old = os.umask(0)
    try:
        FileTokenStore(token_path).update(lambda _: TokenSet(refresh_token="r1"))
        RequestBudget(100, 10, ledger=open_request_ledger(str(token_path), "key")).acquire()
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a") == _mode(tmp_path / "a" / "b") == 0o700
    assert _mode(token_path) == 0o600
    ledger = token_path.with_suffix(".requests.json")
    assert _mode(ledger) == 0o600
    for lock in (Path(f"{token_path}.lock"), Path(f"{ledger}.lock")):
        assert not _mode(lock) & 0o022, lock.name


# A cut-off file and binary junk; the quoted text stands in for patient data or a token.
CORRUPT_FILES = [b'{"refresh_token": "SECRET-VALUE', b"\xff\xfeSECRET-VALUE\x00"]


@pytest.mark.parametrize("content", CORRUPT_FILES, ids=["truncated", "binary"])
def test_corrupt_request_ledger_is_started_afresh_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    token_path = tmp_path / "tokens.json"
    ledger = token_path.with_suffix(".requests.json")
    ledger.write_bytes(content)
    budget = RequestBudget(100, 10, ledger=open_request_ledger(str(token_path), "key"))
    with caplog.at_level(logging.WARNING):
        budget.release(budget.acquire())
    assert len(json.loads(ledger.read_text())["sent"]) == 1  # repaired, counting again
    assert str(ledger) in caplog.text
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize("content", CORRUPT_FILES, ids=["truncated", "binary"])
def test_corrupt_token_file_stays_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "tokens.json"
    path.write_bytes(content)
    with pytest.raises(ConfigurationError, match=r"tokens.json is not valid JSON; delete it") as e:
        FileTokenStore(path).load()
    assert "SECRET" not in str(e.value)
    assert path.read_bytes() == content  # tokens are never thrown away behind our back
