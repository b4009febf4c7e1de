"""Tokens shared across processes: the file token store's updates never interleave, a
rotated refresh token is there for the next process, processes refreshing at once spend each
refresh token once, and access tokens that expire after a few uses are refreshed by both."""

from __future__ import annotations

import datetime as dt
import json
import math
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drchrono_assets.api.token_store import FileTokenStore, TokenSet
from drchrono_assets_tests.support.processes import api_client_process, subprocess_env
from drchrono_sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.processes


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


# -- refresh-token rotation across processes ---------------------------------------------


def test_rotated_refresh_token_is_persisted_for_the_next_process(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    env = subprocess_env(sandbox_env, tmp_path)
    first = api_client_process(env)
    assert first.wait(60) == 0, first.stderr.read().decode()
    # The first process spent DRCHRONO_REFRESH_TOKEN; a second must use the rotated one.
    quiet_sandbox.state.oauth.revoke_access_tokens()
    second = api_client_process(env)
    assert second.wait(60) == 0, second.stderr.read().decode()
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["refresh_grants"] == 2
    assert stats["refresh_token_reuse"] == 0


def test_concurrent_processes_spend_each_refresh_token_once(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    env = subprocess_env(sandbox_env, tmp_path)
    processes = [api_client_process(env) for _ in range(4)]
    for process in processes:
        assert process.wait(60) == 0, process.stderr.read().decode()
    stats = quiet_sandbox.state.stats.snapshot()
    assert stats["refresh_grants"] == 1  # one refreshed, the others read its tokens
    assert stats["refresh_token_reuse"] == 0


_PAGING_SCRIPT = (
    "from drchrono_assets.resources import DrchronoApiResource as R; "
    "r = R.from_env(); print(sum(1 for _ in r.client.iter_pages('/api/patients')))"
)


def test_two_processes_sharing_tokens_that_expire_after_seven_uses(sandbox_env, tmp_path) -> None:
    with SandboxServer(
        SandboxConfig(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 8), access_token_max_uses=7)
    ) as own:
        env = subprocess_env({**sandbox_env, **own.env(), "DRCHRONO_PAGE_SIZE": "15"}, tmp_path)
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", _PAGING_SCRIPT],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        pages = math.ceil(len(own.state.practice.patients) / 15)
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err.decode()
            assert int(out) == pages
        stats = own.state.stats.snapshot()
        assert stats["by_status"].get("401", 0) > 0
        assert stats["refresh_token_reuse"] == 0
