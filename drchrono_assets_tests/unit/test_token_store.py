"""The file token store is private and atomic, and names itself in its errors (updates from
several processes at once: integration/test_tokens_across_processes.py)."""

import json
import logging
import os
import stat
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


def test_a_token_file_locked_too_long_is_a_clear_error_naming_the_store(tmp_path: Path) -> None:
    """Waiters used to give up with a bare ``filelock.Timeout``."""
    import filelock

    from drchrono_assets.errors import DrchronoError

    path = tmp_path / "tokens.json"
    store = FileTokenStore(path)
    store.document._file_lock.timeout = 0.2  # instead of two minutes
    with filelock.FileLock(f"{path}.lock"), pytest.raises(DrchronoError) as raised:
        store.update(lambda _: TokenSet(refresh_token="SECRET-R"))
    message = str(raised.value)
    assert message.startswith(f"the token store {path} stayed locked by another process")
    assert "0.2 s" in message
    assert raised.value.__context__ is None and raised.value.__cause__ is None


def test_a_failed_token_file_write_after_a_refresh_is_retried_and_the_new_token_kept(
    quiet_sandbox, sandbox_env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """drchrono spent the old refresh token: a full disk for a moment must not lose the new one."""
    from drchrono_assets.api.shared_documents import FileDocument
    from drchrono_assets_tests.support.resources import api_for

    token_path = Path(sandbox_env["DRCHRONO_TOKEN_STORE"])
    write = FileDocument._write
    failures: list[Path] = []

    def fail_once(self: FileDocument, value: object) -> None:
        if self.path == token_path and not failures:
            failures.append(self.path)
            raise OSError(28, "No space left on device")
        write(self, value)

    monkeypatch.setattr(FileDocument, "_write", fail_once)
    with caplog.at_level(logging.DEBUG):
        assert api_for(sandbox_env).client.current_user()["username"]
    assert failures
    stored = FileTokenStore(token_path).load()
    assert stored is not None and stored.refresh_token != sandbox_env["DRCHRONO_REFRESH_TOKEN"]
    quiet_sandbox.state.oauth.revoke_access_tokens()
    assert api_for(sandbox_env).client.current_user()["username"]  # the next process
    stats = quiet_sandbox.state.stats.snapshot()
    assert (stats["refresh_grants"], stats["refresh_token_reuse"]) == (2, 0)
    for secret in (sandbox_env["DRCHRONO_REFRESH_TOKEN"], stored.refresh_token):
        assert secret not in caplog.text


def test_a_cancelled_budget_slot_is_given_back(tmp_path: Path) -> None:
    """A token request not sent (another process had refreshed) costs no slot."""

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"waited {seconds}s")

    ledger = open_request_ledger(str(tmp_path / "tokens.json"), "key")
    budget = RequestBudget(per_hour=2, per_second=10, ledger=ledger, sleep=no_sleep)
    budget.cancel(budget.acquire())
    budget.release(budget.acquire())
    budget.release(budget.acquire())  # the hour's two: the cancelled one is not counted
    assert budget.used == 2
    with pytest.raises(AssertionError, match="waited"):
        budget.acquire()
