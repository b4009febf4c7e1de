"""Many practices of one API application in one code location, run as the daemons would.

Five practices of the sandbox operate for 30 mornings; on the tenth a sixth
is connected and an operator backfills its year while the others' sweeps are under way. Each
practice is built from its settings (``PracticeDefinitions``) with a grant and a data root of
its own, and the code location merges them. Every sensor of every practice ticks each morning, the
runs they request are made from the merged definitions, then automation runs.

Time is the sandbox's: the sensors, the sandbox's hourly budget and the clients' request
ledger all go by its clock, and a client that waits for the budget moves it forward. So the
application's real limits (500 requests an hour, 10 a second) hold in simulated hours.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from pathlib import Path

import pytest

from drchrono_assets.api import rate_budget
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets_tests.support.practices_simulation import (
    PracticesMorning,
    assert_only_own_ids,
    requests_claimed,
)
from drchrono_assets_tests.support.simulation import START, TIMEZONE, days_between
from drchrono_sandbox import SandboxConfig, SandboxServer

pytestmark = pytest.mark.simulation

OPERATING = 5  # practices connected before the first morning
MORNINGS = 30  # about 13 minutes on two cores
LATE = 9  # the morning (from 0) on which the sixth practice is connected: day 10
LATECOMER = f"clinic_{OPERATING}"
BUDGET = 500  # drchrono's requests an hour for one API application, all its practices
PER_SECOND = 10
# The five practices keep partitions from here; the sixth has a year of history before it.
FIRST_DAY = START + dt.timedelta(days=365)
SWEEP_SLACK = dt.timedelta(minutes=30)


@pytest.mark.timeout(1500)
def test_practices_of_one_application_keep_every_partition_exact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After 30 mornings each practice's partitions, billing report, sweep state and records
    are its own and exact; no rolling hour saw more than the application's budget; and no
    sweep finished later than the latest one of a morning without a backfill, plus 30
    minutes."""
    started = time.perf_counter()
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(FIRST_DAY + dt.timedelta(days=1), dt.time(4, 30), zone)
    config = SandboxConfig(
        practices=OPERATING + 1,
        start=START,
        end=FIRST_DAY + dt.timedelta(days=MORNINGS),
        clock=first_morning,
        requests_per_hour=BUDGET,
    )
    with SandboxServer(config) as sandbox:
        clock = sandbox.state.clock
        monkeypatch.setattr(sync_sensor, "clock", clock.now)
        monkeypatch.setattr(rate_budget, "clock", clock.timestamp)
        monkeypatch.setattr(
            rate_budget, "sleep", lambda seconds: clock.advance(dt.timedelta(seconds=seconds))
        )
        morning = PracticesMorning(
            sandbox, tmp_path, requests_per_hour=BUDGET, requests_per_second=PER_SECOND
        )
        for index in range(OPERATING):
            morning.connect(index, start=FIRST_DAY)
        mornings = [first_morning + dt.timedelta(days=number) for number in range(MORNINGS)]
        for number, now in enumerate(mornings):
            clock.set(now)
            yesterday = now.date() - dt.timedelta(days=1)
            if number == LATE:
                # The others' sweep runs start; the new practice is connected and its year
                # backfilled before its own sensor's first sweep.
                for name in list(morning.practices):
                    for request in morning.tick(f"{name}__drchrono_changes").run_requests:
                        morning.launch(request)
                morning.connect(OPERATING, start=START)
                assert morning.backfill(LATECOMER, START, yesterday)
            morning.run()
        stats = sandbox.state.stats.snapshot()
        busiest_hour = sandbox.state.stats.max_in_window(3600)
        claimed = requests_claimed(morning.token_store)
        exact = {
            name: morning.assert_exact(
                name, days_between(START if name == LATECOMER else FIRST_DAY, yesterday)
            )
            for name in morning.practices
        }
        checked_ids = {
            name: assert_only_own_ids(practice) for name, practice in morning.practices.items()
        }
        for name in morning.practices:  # each practice's sweeps finished on their own
            state = morning.sync_state(name)
            assert state is not None and state.last_day == yesterday.isoformat(), name
    assert morning.failed_runs == 0
    assert not any(morning.tick_errors)
    assert stats["by_status"].get("429", 0) == 0
    assert busiest_hour <= BUDGET
    # Every practice sent requests, each one claimed in its name from the one ledger.
    assert set(claimed) == set(morning.practices)
    assert all(stats["by_practice"][str(index)] > 0 for index in range(OPERATING + 1))
    assert all(checked_ids.values())
    # Each practice's sweep finished every morning it was connected, and never later than
    # its latest on a morning without a backfill, plus 30 minutes.
    late = {name: sweep_delays(morning, name, mornings) for name in morning.practices}
    for name, delays in late.items():
        expected = MORNINGS if name != LATECOMER else MORNINGS - LATE
        assert len(delays) == expected, name
        free = max(delay for number, delay in delays.items() if number != LATE)
        assert max(delays.values()) <= free + SWEEP_SLACK, name
    print(
        f"\nrequests {stats['api_requests']} by practice {stats['by_practice']}, busiest "
        f"hour {busiest_hour}, latest sweep on the backfill morning "
        f"{max(delays[LATE] for delays in late.values())}, recurring visits billed {exact}, "
        f"{time.perf_counter() - started:.0f} s"
    )


def sweep_delays(
    morning: PracticesMorning, name: str, mornings: list[dt.datetime]
) -> dict[int, dt.timedelta]:
    """Per morning (its number), how long after it began practice ``name``'s sweep finished."""
    delays: dict[int, dt.timedelta] = {}
    for finished in morning.sweeps_finished[name]:
        number = max(n for n, began in enumerate(mornings) if began <= finished)
        delays[number] = finished - mornings[number]
    return delays
