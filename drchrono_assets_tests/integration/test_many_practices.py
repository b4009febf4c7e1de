"""Many practices of one API application in one code location, run as the daemons would.

Each practice is built from its settings (``PracticeDefinitions``) with a grant and a data
root of its own, and the code location merges them. Every sensor of every practice ticks
each simulated morning, the runs they request are made from the merged definitions, then
automation runs. A practice connected on a later morning is backfilled by an operator while
the others' sweeps are under way. At the end every partition of every practice equals what
its sandbox practice serves, and no practice's data root holds another's records.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from pathlib import Path

import pytest

from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets_tests.support.practices_simulation import (
    PracticesMorning,
    assert_only_own_ids,
    requests_claimed,
)
from drchrono_assets_tests.support.simulation import START, TIMEZONE, days_between
from drchrono_sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.simulation

PRACTICES = 3
MORNINGS = 6
LATE = 2  # the morning (from 0) on which the last practice is connected
LATECOMER = f"clinic_{PRACTICES - 1}"
BUDGET = 500  # drchrono's requests an hour for one API application, all its practices


def test_practices_of_one_application_keep_every_partition_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two practices from the first morning, a third connected and backfilled on the third;
    after six mornings each practice's partitions, billing report, sweep state and records
    are its own and exact, and the application's budget was never exceeded."""
    started = time.perf_counter()
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(START + dt.timedelta(days=1), dt.time(4, 30), zone)
    config = SandboxConfig(
        practices=PRACTICES,
        start=START,
        end=START + dt.timedelta(days=MORNINGS),
        clock=first_morning,
        requests_per_hour=BUDGET,
    )
    with SandboxServer(config) as sandbox:
        monkeypatch.setattr(sync_sensor, "clock", sandbox.state.clock.now)
        morning = PracticesMorning(sandbox, tmp_path, connected=PRACTICES - 1)
        for number in range(MORNINGS):
            now = first_morning + dt.timedelta(days=number)
            sandbox.state.clock.set(now)
            yesterday = now.date() - dt.timedelta(days=1)
            if number == LATE:
                # The others' sweep runs start; the new practice is connected and its
                # history backfilled before its own sensor's first sweep.
                for name in list(morning.practices):
                    for request in morning.tick(f"{name}__drchrono_changes").run_requests:
                        morning.launch(request)
                morning.connect(PRACTICES - 1)
                assert morning.backfill(LATECOMER, START, yesterday)
            morning.run()
        stats = sandbox.state.stats.snapshot()
        claimed = requests_claimed(morning.token_store)
        days = days_between(START, yesterday)
        billed_recurring = {name: morning.assert_exact(name, days) for name in morning.practices}
        checked_ids = {
            name: assert_only_own_ids(practice) for name, practice in morning.practices.items()
        }
        for name in morning.practices:  # each practice's sweeps finished on their own
            state = morning.sync_state(name)
            assert state is not None and state.last_day == yesterday.isoformat(), name
    assert morning.failed_runs == 0
    assert not any(morning.tick_errors)
    assert stats["by_status"].get("429", 0) == 0
    # Every practice sent requests, each one claimed from the application's one ledger.
    for name, practice in morning.practices.items():
        assert 0 < stats["by_practice"][str(practice.index)] <= claimed[name], name
    assert all(checked_ids.values())
    print(
        f"\nrequests {stats['api_requests']} by practice {stats['by_practice']}, recurring "
        f"visits billed {billed_recurring}, ids checked {checked_ids}, "
        f"{time.perf_counter() - started:.0f} s"
    )
