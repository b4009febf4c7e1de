"""Every fault at once: a backfill of every asset by two processes sharing one token store and
one request budget, against a sandbox that fails requests at random (seeded)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.cli.demo import local_dagster_home
from drchrono_assets.day_window import DayWindow
from drchrono_assets_tests.support.assets import assert_partition_matches, read_partition, served
from drchrono_assets_tests.support.processes import DAGSTER
from drchrono_sandbox import SandboxConfig, SandboxServer
from drchrono_sandbox.faults import FaultRates

pytestmark = pytest.mark.processes

RANGES = [("2024-02-01", "2024-02-21"), ("2024-02-22", "2024-03-13")]
ALL_FAULTS = FaultRates(
    seed=11,
    server_error=0.10,  # JSON 500, HTML 502 and 503
    drop_connection=0.03,
    cut_body=0.03,  # closed before the promised Content-Length
    invalid_json=0.03,  # cut short under an honest Content-Length
    throttle_burst=0.01,  # then 3 bare 429s in a row
    paths=("/api/", "/o/token/"),
)
TOKEN_USES = 7  # the access token expires every 7 requests


def _backfill_by_two_processes(sandbox: SandboxServer, folder: Path) -> list[str]:
    """Both processes' output after they finished; each has its range, all share the rest."""
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("DRCHRONO_")},
        **sandbox.env(),
        "DRCHRONO_TOKEN_STORE": str(folder / "secrets" / "tokens.json"),
        "DRCHRONO_DATA_ROOT": str(folder / "data"),
        "DRCHRONO_PAGE_SIZE": "50",  # many pages: many chances to fail
        "DRCHRONO_RETRY_BACKOFF_SECONDS": "0.05",
        "DRCHRONO_REQUESTS_PER_HOUR": "100000",  # the budget is tested on its own
    }
    processes = []
    for first, last in RANGES:
        home = local_dagster_home(folder / f"dagster_home_{first}")
        command = [DAGSTER, "asset", "materialize", "-m", "drchrono_assets.definitions"]
        command += ["--select", "group:drchrono", "--partition-range", f"{first}...{last}"]
        processes.append(
            subprocess.Popen(
                command,
                env={**env, "DAGSTER_HOME": str(home)},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-6000:]
    return outputs


def _assert_every_record_lands_once(sandbox: SandboxServer, data_root: Path) -> None:
    days = DayWindow.from_partition_keys([RANGES[0][0], RANGES[-1][1]]).partition_keys
    for spec in RESOURCES:
        for day in days:
            table = read_partition(data_root, spec.name, day)
            assert_partition_matches(table, spec, served(sandbox, spec.name, day))


@pytest.mark.timeout(900)
def test_backfill_under_every_fault_at_once(tmp_path) -> None:
    """Compared with the same backfill where only the access token expires: network faults
    cost their own retries and nothing more, never a record, a duplicate, a failed run or a
    spent refresh token."""
    with SandboxServer(SandboxConfig(access_token_max_uses=TOKEN_USES)) as calm:
        _backfill_by_two_processes(calm, tmp_path / "calm")
        calm_stats = calm.state.stats.snapshot()
    with SandboxServer(SandboxConfig(access_token_max_uses=TOKEN_USES, chaos=ALL_FAULTS)) as stormy:
        _backfill_by_two_processes(stormy, tmp_path / "stormy")
        stats = stormy.state.stats.snapshot()
        _assert_every_record_lands_once(stormy, tmp_path / "stormy" / "data")
    assert stats["refresh_token_reuse"] == 0
    broken = {status: stats["by_status"].get(status, 0) for status in ("429", "500", "502", "503")}
    broken["dropped"] = sum(1 for _, _, status in stats["arrivals"] if status is None)
    print(
        f"\nrequests without network faults: {calm_stats['requests']}, with: "
        f"{stats['requests']} ({stats['requests'] / calm_stats['requests']:.2f}x); "
        f"answers {broken}, refreshes {calm_stats['refresh_grants']} -> {stats['refresh_grants']}, "
        f"answered by the API {answered_by_api(calm_stats)} -> {answered_by_api(stats)}"
    )
    assert all(broken.values()), broken  # every kind of fault happened
    # A fault costs the retry of the request it hit, never a page or a grant more. (How many
    # requests that adds is chance: about one in five requests meets a fault here.)
    assert answered_by_api(stats) == answered_by_api(calm_stats)
    assert stats["refresh_grants"] == calm_stats["refresh_grants"]


def answered_by_api(stats: dict) -> int:
    """Requests the API itself answered with what was asked: neither a fault's answer nor an
    expired access token's 401 (how many of those two processes meet depends on timing)."""
    return stats["requests"] - stats["faulted"] - stats["by_status"].get("401", 0)
