"""Daily operation as it happens: simulated mornings against a sandbox whose practice evolves.

Every sensor of the code location is evaluated each morning (keeping its cursor), the runs it
requests are executed in-process, then the automation conditions are evaluated and what
they request is executed too, exactly as the daemons would. At the end every partition of
every dated asset and of ``billing_report`` must equal what the API serves that morning.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import zoneinfo
from collections import defaultdict
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from drchrono_assets.assets import resource_assets
from drchrono_assets.catalog import RESOURCES
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.sandbox import SandboxServer
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets.sync.changes import day_ranges
from drchrono_assets_tests.assets_support import (
    assert_partition_matches,
    every_asset,
    read_partition,
)
from drchrono_assets_tests.conftest import api_for
from drchrono_assets_tests.test_billing_report import doctor_names, expected_rows, report_rows

TIMEZONE = "UTC"
START = dt.date(2024, 1, 1)
MORNINGS = int(os.environ.get("DRCHRONO_SIMULATED_MORNINGS", "90"))
PAGE = 250
INGEST = {asset.key.to_user_string(): [asset] for asset in resource_assets}
DAY_FIELD = {"appointments": "scheduled_time", "transactions": "date", "documents": "date"}


class Morning:
    """One simulated morning: the sensor, its runs, then automation."""

    def __init__(self, sandbox: SandboxServer, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        from drchrono_assets.definitions import defs

        self.defs = defs
        self.sandbox = sandbox
        self.instance = dg.DagsterInstance.ephemeral()
        env = {
            **sandbox.env(),
            "DRCHRONO_TOKEN_STORE": str(root / "secrets" / "tokens.json"),
        }
        self.resources: dict[str, Any] = {
            "drchrono": api_for(env),
            "parquet_io_manager": HiveParquetIOManager(data_root=str(root / "data")),
        }
        self.data_root = root / "data"
        self.every_asset = every_asset()
        self.sensor_cursors: dict[str, str | None] = {}
        self.automation_cursor = None
        monkeypatch.setattr(sync_sensor, "clock", lambda: sandbox.state.clock.now())

    def run(self) -> None:
        for sensor in self.defs.sensors or []:
            for _ in range(5):  # until the sensor has nothing more to ask for this morning
                with dg.build_sensor_context(
                    instance=self.instance,
                    cursor=self.sensor_cursors.get(sensor.name),
                    resources=self.resources,
                ) as context:
                    result = sensor.evaluate_tick(context)
                self.sensor_cursors[sensor.name] = result.cursor
                if not result.run_requests:
                    break
                for request in result.run_requests:
                    self.execute(
                        request.asset_selection,
                        {**request.tags, "dagster/run_key": request.run_key},
                    )
        self.automate()

    def execute(self, selection: Any, tags: dict[str, str]) -> None:
        # Ingest runs need only their assets; the billing report loads its upstream too.
        names = [key.to_user_string() for key in selection]
        assets = (
            [asset for name in names for asset in INGEST[name]]
            if all(name in INGEST for name in names)
            else self.every_asset
        )
        dg.materialize(
            assets,
            selection=selection,
            tags=tags,
            instance=self.instance,
            resources=self.resources,
        )

    def automate(self) -> None:
        """Automation ticks until it asks for nothing more, as the daemon's ticks would."""
        key = dg.AssetKey("billing_report")
        for _ in range(5):
            result = dg.evaluate_automation_conditions(
                defs=dg.Definitions(assets=self.every_asset, resources=self.resources),
                instance=self.instance,
                cursor=self.automation_cursor,
                evaluation_time=self.sandbox.state.clock.now(),
            )
            self.automation_cursor = result.cursor
            requested = result.get_requested_partitions(key)
            if not requested:
                return
            for window in day_ranges(requested):
                self.execute(
                    [key],
                    {
                        "dagster/asset_partition_range_start": window.first.isoformat(),
                        "dagster/asset_partition_range_end": window.last.isoformat(),
                    },
                )


def _by_day(resource: str, records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        days[record[DAY_FIELD[resource]][:10]].append(record)
    return days


@pytest.mark.timeout(1800)
def test_ninety_mornings_keep_every_partition_exact(tmp_path, monkeypatch) -> None:
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(START + dt.timedelta(days=1), dt.time(4, 30), zone)
    with SandboxServer(
        seed=7, start=START, end=START + dt.timedelta(days=MORNINGS), clock=first_morning
    ) as sandbox:
        morning = Morning(sandbox, tmp_path, monkeypatch)
        floor = 0
        previous = dt.datetime.combine(START, dt.time(), zone)
        for number in range(MORNINGS):
            now = first_morning + dt.timedelta(days=number)
            sandbox.state.clock.set(now)
            morning.run()
            floor += _floor(sandbox, previous, now)
            previous = now
        requests = sandbox.state.stats.snapshot()["api_requests"]
        practice = sandbox.state.practice
        last = (now.date() - dt.timedelta(days=1)).isoformat()
        days = [(START + dt.timedelta(days=n)).isoformat() for n in range(MORNINGS)]
        for spec in RESOURCES:
            if spec.name not in DAY_FIELD:
                continue
            current = _by_day(spec.name, practice.current(spec.name))
            for day in days:
                if day > last:
                    continue
                table = read_partition(morning.data_root, spec.name, day)
                assert_partition_matches(table, spec, current.get(day, []))
        names = doctor_names(sandbox)
        for day in days:
            if day > last:
                continue
            rows, expected = report_rows(morning.data_root, day), expected_rows(sandbox, day)
            assert set(rows) == set(expected), day
            for appointment_id, want in expected.items():
                row = rows[appointment_id]
                for name, value in want.items():
                    assert row[name] == value, (day, appointment_id, name)
                assert row["doctor_name"] == names[want["doctor_id"]], (day, appointment_id)
    print(f"\nrequests {requests}, floor {floor}")
    assert requests <= 1.2 * floor


def _pages(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE))


def _floor(sandbox: SandboxServer, since: dt.datetime, until: dt.datetime) -> int:
    """The fewest requests a morning can cost: each ``since`` query's changed rows in pages
    (at least one request each), plus a listing of each snapshot resource."""
    practice = sandbox.state.practice

    def changed(resource: str) -> list[dict[str, Any]]:
        local = [
            moment.astimezone(practice.clock.zone).replace(tzinfo=None) for moment in (since, until)
        ]
        return practice.versions_between(resource, *local)

    cost = _pages(len(changed("appointments"))) + _pages(len(changed("documents")))
    lines = changed("transactions")
    for doctor in practice.current("doctors"):
        cost += _pages(sum(1 for line in lines if line["doctor"] == doctor["id"]))
    for spec in RESOURCES:
        if spec.name not in DAY_FIELD:
            cost += _pages(len(practice.current(spec.name)))
    return cost


def test_a_failed_run_is_requested_again_and_the_cursor_waits_for_it(tmp_path, monkeypatch) -> None:
    from drchrono_assets.assets import ingest

    zone = zoneinfo.ZoneInfo(TIMEZONE)
    first_morning = dt.datetime.combine(START + dt.timedelta(days=10), dt.time(4, 30), zone)
    with SandboxServer(
        seed=7, start=START, end=START + dt.timedelta(days=20), clock=first_morning
    ) as sandbox:
        morning = Morning(sandbox, tmp_path, monkeypatch)
        morning.run()
        sandbox.state.clock.set(first_morning + dt.timedelta(days=1))
        broken = {"merges": 0}

        def failing_merge(*args: Any, **kwargs: Any) -> Any:
            broken["merges"] += 1
            raise RuntimeError("disk full")

        monkeypatch.setattr(ingest, "merge_changes", failing_merge)
        sensor = morning.defs.get_sensor_def("drchrono_changes")

        def tick() -> Any:
            with dg.build_sensor_context(
                instance=morning.instance,
                cursor=morning.sensor_cursors["drchrono_changes"],
                resources=morning.resources,
            ) as context:
                result = sensor.evaluate_tick(context)
            morning.sensor_cursors["drchrono_changes"] = result.cursor
            return result

        def cursor() -> sync_sensor.SyncCursor:
            return sync_sensor.SyncCursor.from_json(morning.sensor_cursors["drchrono_changes"])

        before = cursor().since
        result = tick()
        for request in result.run_requests:
            tags = {**request.tags, "dagster/run_key": request.run_key}
            dg.materialize(
                morning.every_asset,
                selection=request.asset_selection,
                tags=tags,
                instance=morning.instance,
                resources=morning.resources,
                raise_on_error=False,
            )
        assert broken["merges"] > 0
        retried = tick().run_requests
        assert retried and all(request.run_key.endswith("#2") for request in retried)
        assert cursor().since == before  # nothing skipped while runs failed
        monkeypatch.undo()
        monkeypatch.setattr(sync_sensor, "clock", lambda: sandbox.state.clock.now())
        for request in retried:
            morning.execute(
                request.asset_selection, {**request.tags, "dagster/run_key": request.run_key}
            )
        tick()
        assert cursor().sweep is None and cursor().since > before
