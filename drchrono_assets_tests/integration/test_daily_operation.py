"""Daily operation as it happens: simulated mornings against a sandbox whose practice evolves.

Every sensor of the code location is evaluated each morning (keeping its cursor), the runs it
requests are executed in-process, then the automation conditions are evaluated and what
they request is executed too, exactly as the daemons would. At the end every partition of
every dated asset and of ``billing_report`` must equal what the API serves that morning.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter

import dagster as dg
import pyarrow.parquet as pq
import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets_tests.support.assets import (
    assert_partition_matches,
    partition_file,
    read_partition,
)
from drchrono_assets_tests.support.simulation import (
    START,
    AfterFirstMorning,
    assert_dated_partitions_exact,
    assert_every_partition_exact,
    days_between,
    evolving_practice,
    floor_by_path,
    incremental_floor,
    records_by_day,
)

pytestmark = pytest.mark.simulation

MORNINGS = int(os.environ.get("DRCHRONO_SIMULATED_MORNINGS", "90"))


@pytest.mark.timeout(1800)
def test_ninety_mornings_keep_every_partition_exact(tmp_path, monkeypatch) -> None:
    with evolving_practice(tmp_path, monkeypatch, first_morning=1, days=MORNINGS) as practice:
        sandbox, morning, first_morning = practice.sandbox, practice.morning, practice.at
        floor = 0
        previous = dt.datetime.combine(START, dt.time(), first_morning.tzinfo)
        for number in range(MORNINGS):
            now = first_morning + dt.timedelta(days=number)
            sandbox.state.clock.set(now)
            morning.run()
            floor += incremental_floor(sandbox, previous, now)
            previous = now
        requests = sandbox.state.stats.snapshot()["api_requests"]
        last = now.date() - dt.timedelta(days=1)
        billed_recurring = assert_every_partition_exact(morning, days_between(START, last))
        assert billed_recurring > 0  # visits found by doctor, start time and office
        assert morning.failed_runs == 0 and not any(morning.tick_errors)
        # What follows billing by automation was rebuilt after its last update.
        latest = {
            name: morning.instance.get_latest_materialization_event(dg.AssetKey(name)).timestamp
            for name in ("billing_report", "ar_aging", "bi_duckdb")
        }
        assert latest["ar_aging"] > latest["billing_report"]
        assert latest["bi_duckdb"] > latest["billing_report"]
    print(f"\nrequests {requests}, floor {floor}")
    assert requests <= 1.05 * floor


def test_a_change_dated_after_yesterday_is_merged_when_its_day_comes(
    after_first_morning: AfterFirstMorning,
) -> None:
    """A document uploaded today for tomorrow's visit is in today's change set only: it waits
    for the sweep whose yesterday it belongs to, though it never changes again."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    first_morning = after_first_morning.at
    sandbox.state.clock.advance(dt.timedelta(hours=2))
    visit_day = first_morning.date() + dt.timedelta(days=1)
    practice = sandbox.state.practice
    some = practice.current("documents")[0]
    document = practice.create_document(
        doctor=some["doctor"],
        patient=some["patient"],
        description="Intake form",
        day=visit_day,
        metatags=[],
        filename="intake.pdf",
        content=b"%PDF-1.4",
        content_type="application/pdf",
    )
    stored_ids: list[set[int]] = []
    for number in (1, 2):
        sandbox.state.clock.set(first_morning + dt.timedelta(days=number))
        morning.run()
        path = partition_file(morning.data_root, "documents", visit_day.isoformat())
        stored_ids.append(set(pq.read_table(path)["id"].to_pylist()) if path.exists() else set())
    assert document["id"] not in stored_ids[0]  # its day was no partition yet
    assert document["id"] in stored_ids[1]
    spec = next(spec for spec in RESOURCES if spec.name == "documents")
    table = read_partition(morning.data_root, "documents", visit_day.isoformat())
    current = records_by_day("documents", practice.current("documents"))
    assert_partition_matches(table, spec, current[visit_day.isoformat()])


def test_missed_mornings_are_caught_up_and_a_day_without_a_file_is_fetched_not_merged(
    after_first_morning: AfterFirstMorning,
) -> None:
    """Three mornings without a daemon: the next sweep lists every day since; and a stored
    day whose file is gone is fetched whole when a change dirties it, never merged into
    nothing (which would leave only the changed record)."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    old_day = (after_first_morning.at.date() - dt.timedelta(days=1)).isoformat()
    partition_file(morning.data_root, "appointments", old_day).unlink()
    practice = sandbox.state.practice
    old = records_by_day("appointments", practice.current("appointments"))[old_day]
    assert len(old) > 1
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=4))
    practice.touch("appointments", old[0]["id"])
    morning.run()
    assert morning.failed_runs == 0
    first = after_first_morning.at.date() - dt.timedelta(days=1)
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range(5)]
    assert_dated_partitions_exact(morning, days)
    for name in ("doctors", "patients"):  # the snapshots of the missed days too
        assert all(partition_file(morning.data_root, name, day).exists() for day in days)


def test_a_cursor_cleared_the_afternoon_after_a_sweep_sweeps_again_without_losing_a_change(
    after_first_morning: AfterFirstMorning,
) -> None:
    """Run keys are unique per sweep: the daemon skips none of the new sweep's runs, and the
    new sweep starts where the morning's ended (the data root's state), not from yesterday."""
    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at.replace(hour=15))
    morning.sensor_cursors["drchrono_changes"] = None
    morning.run()
    keys = [
        run.tags["dagster/run_key"]
        for run in morning.instance.get_runs()
        if "dagster/run_key" in run.tags and "drchrono/sweep" in run.tags
    ]
    assert len(keys) == len(set(keys)) and {key[:17] for key in keys} == {
        after_first_morning.at.strftime("%Y-%m-%dT%H%M%S"),
        after_first_morning.at.replace(hour=15).strftime("%Y-%m-%dT%H%M%S"),
    }
    first = after_first_morning.at.date() - dt.timedelta(days=1)
    assert_dated_partitions_exact(morning, [first.isoformat()])
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))
    morning.run()
    days = [(first + dt.timedelta(days=n)).isoformat() for n in range(2)]
    assert_dated_partitions_exact(morning, days)
    assert morning.failed_runs == 0


def test_a_morning_costs_its_floor_path_by_path(tmp_path, monkeypatch) -> None:
    """After the first morning, each ``since`` query costs the pages of its changes; doctors
    are listed once a morning (their snapshot and the transactions' fan-out share it); no day's
    appointments are listed by date; patients are never listed whole, only counted once a
    week (one request)."""
    with evolving_practice(tmp_path, monkeypatch, first_morning=1, days=10) as practice:
        sandbox, morning, first_morning = practice.sandbox, practice.morning, practice.at
        morning.run()  # lists the snapshots, and the appointments booked ahead, once
        spent: Counter[str] = Counter()
        floor: Counter[str] = Counter()
        previous = first_morning
        for number in range(1, 10):
            now = first_morning + dt.timedelta(days=number)
            sandbox.state.clock.set(now)
            before = sandbox.state.stats.snapshot()["by_path"]
            morning.run()
            after = sandbox.state.stats.snapshot()["by_path"]
            spent += Counter({path: after[path] - before.get(path, 0) for path in after})
            floor += floor_by_path(sandbox, previous, now)
            previous = now
    assert morning.failed_runs == 0
    # The seventh day after the first morning's listing: the week's check of patients.
    assert spent["/api/patients"] == floor["/api/patients"] + 1
    spent["/api/patients"] -= 1
    assert {path: count for path, count in spent.items() if path.startswith("/api/")} == floor


def test_a_deleted_patient_stays_in_the_snapshots_until_the_weekly_check(
    after_first_morning: AfterFirstMorning,
) -> None:
    """``since`` never shows a deletion: a patient deleted (or merged into another) in drchrono
    stays in each morning's snapshot until the week's check finds the API counting one fewer
    and lists patients whole; the snapshots from then on are exact."""
    sandbox, morning, first = (
        after_first_morning.sandbox,
        after_first_morning.morning,
        after_first_morning.at,
    )
    practice = sandbox.state.practice
    deleted = practice.current("patients")[0]["id"]
    practice.delete("patients", deleted)
    still_there = []
    for number in range(1, 8):
        now = first + dt.timedelta(days=number)
        sandbox.state.clock.set(now)
        morning.run()
        yesterday = (now.date() - dt.timedelta(days=1)).isoformat()
        stored = read_partition(morning.data_root, "patients", yesterday)
        still_there.append(deleted in stored["id"].to_pylist())
    assert still_there == [True] * 6 + [False]
    spec = next(spec for spec in RESOURCES if spec.name == "patients")
    assert_partition_matches(stored, spec, practice.current("patients"))
    assert morning.failed_runs == 0
