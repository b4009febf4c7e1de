"""One request budget per API application, across threads, processes and Dagster runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from drchrono_assets.api.rate_budget import RequestBudget, open_request_ledger
from drchrono_assets.catalog import RESOURCES
from drchrono_assets.cli.demo import local_dagster_home
from drchrono_assets.day_window import DayWindow
from drchrono_assets_tests.support.assets import assert_partition_matches, read_partition, served
from drchrono_assets_tests.support.processes import DAGSTER, subprocess_env

pytestmark = pytest.mark.processes

# A client process: ``list_records`` N times with the ``DRCHRONO_*`` environment.
LISTING = (
    "import sys\n"
    "from drchrono_assets.resources import DrchronoApiResource\n"
    "api = DrchronoApiResource.from_env()\n"
    "for _ in range(int(sys.argv[1])):\n"
    "    api.client.list_records('/api/doctors')\n"
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _budgets(token_file: str, per_hour: int, clock: FakeClock) -> list[RequestBudget]:
    """Two processes' budgets: each opens the ledger on its own, nothing in memory is shared."""
    return [
        RequestBudget(
            per_hour,
            10,
            clock=clock,
            sleep=clock.sleep,
            ledger=open_request_ledger(token_file, "a"),
        )
        for _ in range(2)
    ]


def test_budgets_of_two_processes_draw_from_one_ledger_file(tmp_path) -> None:
    clock = FakeClock()
    first, second = _budgets(str(tmp_path / "tokens.json"), 3, clock)
    first.release(first.acquire())
    clock.now += 10
    second.release(second.acquire())
    first.acquire()
    clock.now += 10
    second.acquire()  # the hour's three are spent: waits for the first to age out
    assert clock.now == 1000.0 + 3600
    assert (first.used, second.used) == (2, 2)


def test_a_slot_ages_from_the_answer(tmp_path) -> None:
    clock = FakeClock()
    first, second = _budgets(str(tmp_path / "tokens.json"), 1, clock)
    ticket = first.acquire()
    clock.now += 50  # a slow answer: the server may have counted it late
    first.release(ticket)
    second.acquire()
    assert clock.now == 1000.0 + 50 + 3600


def test_a_pause_stops_every_user_of_the_ledger(tmp_path) -> None:
    clock = FakeClock()
    throttled, other = _budgets(str(tmp_path / "tokens.json"), 100, clock)
    throttled.pause(30)
    other.acquire()
    assert clock.now == 1000.0 + 30


def _budget_env(
    sandbox_env: dict[str, str], tmp_path: Path, requests: int, window_seconds: int
) -> dict[str, str]:
    """A budget of ``requests`` per ``window_seconds`` rolling window, for every process."""
    return {
        **subprocess_env(sandbox_env, tmp_path),
        "DRCHRONO_REQUESTS_PER_HOUR": str(requests),
        "DRCHRONO_REQUEST_BUDGET_WINDOW_SECONDS": str(window_seconds),
    }


def _clients(env: dict[str, str], count: int, requests_each: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", LISTING, str(requests_each)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(count)
    ]


def test_processes_never_exceed_the_budget_in_any_rolling_window(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    env = _budget_env(sandbox_env, tmp_path, requests=5, window_seconds=2)
    quiet_sandbox.state.stats.reset()  # only what the clients send
    for process in _clients(env, count=3, requests_each=6):
        assert process.wait(120) == 0, process.stderr.read().decode()[-2000:]
    stats = quiet_sandbox.state.stats
    assert stats.snapshot()["by_path"]["/api/doctors"] == 18
    # Token requests count against the budget too.
    assert stats.max_in_window(2.0, prefix="/") <= 5


def test_a_429_pauses_every_process(quiet_sandbox, sandbox_env, tmp_path) -> None:
    quiet_sandbox.state.latency_ms = 20
    env = {**subprocess_env(sandbox_env, tmp_path), "DRCHRONO_RETRY_BACKOFF_SECONDS": "2"}
    quiet_sandbox.state.stats.reset()
    try:
        # Armed once both clients are at work; a bare 429, as drchrono answers.
        quiet_sandbox.state.faults.add(path_prefix="/api/doctors", skip=12, status=429)
        for process in _clients(env, count=2, requests_each=30):
            assert process.wait(120) == 0, process.stderr.read().decode()[-2000:]
    finally:
        quiet_sandbox.state.latency_ms = 0
    arrivals = quiet_sandbox.state.stats.snapshot()["arrivals"]
    (throttled_at,) = [time for time, _, status in arrivals if status == 429]
    during_pause = [time for time, _, _ in arrivals if throttled_at < time < throttled_at + 2]
    # Only the other client's request already on its way when the 429 came back.
    assert len(during_pause) <= 1


def _materialize_process(
    env: dict[str, str], dagster_home: Path, first: str, last: str
) -> subprocess.Popen:
    """``dagster asset materialize`` of the ten ingest assets, in a Dagster instance of its
    own (Dagster's local SQLite storage is not made for two processes creating it at once)."""
    local_dagster_home(dagster_home)
    command = [DAGSTER, "asset", "materialize", "-m", "drchrono_assets.definitions"]
    command += ["--select", "group:drchrono", "--partition-range", f"{first}...{last}"]
    return subprocess.Popen(
        command,
        env={**env, "DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_dagster_runs_and_their_step_processes_share_one_budget(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    env = _budget_env(sandbox_env, tmp_path, requests=6, window_seconds=3)
    quiet_sandbox.state.stats.reset()  # only what the runs send
    ranges = [("2024-03-01", "2024-03-07"), ("2024-03-08", "2024-03-14")]
    runs = [
        _materialize_process(env, tmp_path / f"home_{first}", first, last) for first, last in ranges
    ]
    for run in runs:
        assert run.wait(600) == 0, run.stderr.read().decode()[-6000:]
    assert quiet_sandbox.state.stats.max_in_window(3.0, prefix="/") <= 6
    for spec in RESOURCES:
        for day in DayWindow.from_partition_keys(["2024-03-01", "2024-03-14"]).partition_keys:
            table = read_partition(env["DRCHRONO_DATA_ROOT"], spec.name, day)
            if spec.name in ("appointments", "transactions", "documents"):
                assert_partition_matches(table, spec, served(quiet_sandbox, spec.name, day))


# A process drawing ARGV[4] slots from the application's ledger beside ARGV[1] as practice
# ARGV[2], for a sweep or a backfill (ARGV[3]); it prints when it starts and each admission.
DRAWING = (
    "import sys, time\n"
    "from drchrono_assets.api.fair_share import Claimant\n"
    "from drchrono_assets.api.rate_budget import RequestBudget, open_request_ledger\n"
    "store, practice, kind, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])\n"
    "budget = RequestBudget(4, 100, ledger=open_request_ledger(store, 'app'),\n"
    "    window_seconds=2.0, claimant=Claimant(practice, kind == 'sweep'))\n"
    "print('started', time.time(), flush=True)\n"
    "for _ in range(count):\n"
    "    ticket = budget.acquire()\n"
    "    print('admitted', time.time(), flush=True)\n"
    "    budget.release(ticket)\n"
)


def _drawing(store: Path, practice: str, kind: str, count: int) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", DRAWING, str(store), practice, kind, str(count)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _moments(process: subprocess.Popen[str]) -> dict[str, list[float]]:
    """What the process printed from now on: when it started drawing, when each of its
    slots was admitted."""
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    moments: dict[str, list[float]] = {"started": [], "admitted": []}
    for line in stdout.splitlines():
        what, moment = line.split()
        moments[what].append(float(moment))
    return moments


def test_live_processes_take_turns_a_sweep_first_then_backfills_evenly(tmp_path) -> None:
    """Practice a's backfill has spent the window (4 slots in 2 s) when practice s's sweep
    starts, then practice b's backfill: the sweep's slots all come first, then b catches
    up with a, who has used more of the window."""
    store = tmp_path / "tokens.json"
    backfill_a = _drawing(store, "a", "backfill", 16)
    assert backfill_a.stdout is not None
    first = [backfill_a.stdout.readline().split()[0] for _ in range(5)]
    assert first == ["started"] + ["admitted"] * 4  # the window spent
    sweep = _drawing(store, "s", "sweep", 4)
    assert sweep.stdout is not None
    sweep_started = float(sweep.stdout.readline().split()[1])
    backfill_b = _drawing(store, "b", "backfill", 8)
    swept, b_slots = _moments(sweep)["admitted"], _moments(backfill_b)["admitted"]
    a_rest = _moments(backfill_a)["admitted"]
    # b has used no slot either, but a sweep goes first: all its slots before b's first.
    assert swept[-1] < b_slots[0], (swept, b_slots)
    # At 2 slots a second the sweep's 4 take about 2 s; shared with two backfills, 6 s.
    assert swept[-1] - sweep_started < 4.0, (sweep_started, swept)
    # After the sweep, b (fewer slots in the window) gets at least as many as a.
    a_after = [moment for moment in a_rest if swept[-1] < moment <= b_slots[-1]]
    assert len(b_slots) >= len(a_after), (a_after, b_slots)
