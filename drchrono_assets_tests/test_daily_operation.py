"""Daily operation as it happens: simulated mornings against a sandbox whose practice evolves.

Every sensor of the code location is evaluated each morning (keeping its cursor), the runs it
requests are executed in-process, then the automation conditions are evaluated and what
they request is executed too, exactly as the daemons would. At the end every partition of
every dated asset and of ``billing_report`` must equal what the API serves that morning.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import zoneinfo
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pyarrow.parquet as pq
import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.sandbox import SandboxConfig, SandboxServer
from drchrono_assets.sandbox.resource_table import DAY_FIELDS
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets.sync.staged import StagedChanges
from drchrono_assets_tests.assets_support import (
    assert_partition_matches,
    partition_file,
    read_partition,
)
from drchrono_assets_tests.billing_oracle import doctor_names, expected_rows, report_rows
from drchrono_assets_tests.simulation import Morning, incremental_floor, records_by_day

TIMEZONE = "UTC"
START = dt.date(2024, 1, 1)
MORNINGS = int(os.environ.get("DRCHRONO_SIMULATED_MORNINGS", "90"))


@pytest.mark.timeout(1800)
def test_ninety_mornings_keep_every_partition_exact(tmp_path, monkeypatch) -> None:
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(START + dt.timedelta(days=1), dt.time(4, 30), zone)
    with SandboxServer(
        SandboxConfig(start=START, end=START + dt.timedelta(days=MORNINGS), clock=first_morning)
    ) as sandbox:
        morning = Morning(sandbox, tmp_path)
        monkeypatch.setattr(sync_sensor, "clock", sandbox.state.clock.now)
        floor = 0
        previous = dt.datetime.combine(START, dt.time(), zone)
        for number in range(MORNINGS):
            now = first_morning + dt.timedelta(days=number)
            sandbox.state.clock.set(now)
            morning.run()
            floor += incremental_floor(sandbox, previous, now)
            previous = now
        requests = sandbox.state.stats.snapshot()["api_requests"]
        practice = sandbox.state.practice
        last = (now.date() - dt.timedelta(days=1)).isoformat()
        days = [(START + dt.timedelta(days=n)).isoformat() for n in range(MORNINGS)]
        for spec in RESOURCES:
            if spec.name not in DAY_FIELDS:
                continue
            current = records_by_day(spec.name, practice.current(spec.name))
            for day in days:
                if day > last:
                    continue
                table = read_partition(morning.data_root, spec.name, day)
                assert_partition_matches(table, spec, current.get(day, []))
        names = doctor_names(sandbox)
        billed_recurring = 0
        for day in days:
            if day > last:
                continue
            rows, expected = report_rows(morning.data_root, day), expected_rows(sandbox, day)
            assert set(rows) == set(expected), day
            billed_recurring += sum(
                1 for key, want in expected.items() if "_" in key and want["line_items"]
            )
            for appointment_id, want in expected.items():
                row = rows[appointment_id]
                for name, value in want.items():
                    assert row[name] == value, (day, appointment_id, name)
                assert row["doctor_name"] == names[want["doctor_id"]], (day, appointment_id)
        assert billed_recurring > 0  # visits found by doctor, start time and office
        # What follows billing by automation was rebuilt after its last update.
        latest = {
            name: morning.instance.get_latest_materialization_event(dg.AssetKey(name)).timestamp
            for name in ("billing_report", "ar_aging", "bi_duckdb")
        }
        assert latest["ar_aging"] > latest["billing_report"]
        assert latest["bi_duckdb"] > latest["billing_report"]
    print(f"\nrequests {requests}, floor {floor}")
    assert requests <= 1.2 * floor


@dataclasses.dataclass
class AfterFirstMorning:
    """Day 10 of the evolving practice, its morning swept and its runs done."""

    sandbox: SandboxServer
    morning: Morning
    at: dt.datetime


@pytest.fixture
def after_first_morning(tmp_path, monkeypatch) -> Iterator[AfterFirstMorning]:
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(START + dt.timedelta(days=10), dt.time(4, 30), zone)
    with SandboxServer(
        SandboxConfig(start=START, end=START + dt.timedelta(days=20), clock=first_morning)
    ) as sandbox:
        morning = Morning(sandbox, tmp_path)
        monkeypatch.setattr(sync_sensor, "clock", sandbox.state.clock.now)
        morning.run()
        yield AfterFirstMorning(sandbox, morning, first_morning)


def test_a_failed_run_is_requested_again_later_and_the_sweep_waits_for_it(
    after_first_morning: AfterFirstMorning, monkeypatch
) -> None:
    from drchrono_assets.assets import ingest
    from drchrono_assets.sync.changes import merge_changes

    sandbox, morning = after_first_morning.sandbox, after_first_morning.morning
    sandbox.state.clock.set(after_first_morning.at + dt.timedelta(days=1))
    broken = {"merges": 0}

    def failing_merge(*args: Any, **kwargs: Any) -> Any:
        broken["merges"] += 1
        raise RuntimeError("disk full")

    monkeypatch.setattr(ingest, "merge_changes", failing_merge)
    staged = StagedChanges(str(morning.data_root))
    before = staged.state()
    for request in morning.tick("drchrono_changes").run_requests:  # the sweep run
        assert morning.launch(request)
    merges = morning.tick("drchrono_changes").run_requests
    assert not all([morning.launch(request) for request in merges])
    assert broken["merges"] > 0
    assert not morning.tick("drchrono_changes").run_requests  # not at once: backoff
    sandbox.state.clock.advance(sync_sensor.FIRST_RETRY)
    retried = morning.tick("drchrono_changes").run_requests
    assert retried and all(request.run_key.endswith("#2") for request in retried)
    assert staged.state() == before  # nothing skipped while runs failed
    monkeypatch.setattr(ingest, "merge_changes", merge_changes)
    assert all([morning.launch(request) for request in retried])
    morning.tick("drchrono_changes")
    cursor = sync_sensor.SyncCursor.from_json(morning.sensor_cursors["drchrono_changes"])
    assert cursor.sweep is None and staged.state().since > before.since


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
