"""Simulated mornings: the code location's schedules, sensors and automation, driven as the daemons
would, against a sandbox whose practice evolves (its clock moved by the caller). The sensor's
clock must follow the sandbox's: set ``drchrono_assets.sync.sensor.clock``."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import math
import time
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.source.changes import day_ranges
from drchrono_assets.sync import sensor as sync_sensor
from drchrono_assets_tests.support.assets import (
    assert_partition_matches,
    every_asset,
    read_partition,
)
from drchrono_assets_tests.support.billing_oracle import doctor_names, expected_rows, report_rows
from drchrono_assets_tests.support.definitions import freshness_checks, jobs, resource_assets
from drchrono_assets_tests.support.resources import api_for
from drchrono_sandbox import SandboxConfig, SandboxServer
from drchrono_sandbox.resource_table import DAY_FIELDS

#: Where the simulated practices begin, and the zone of their mornings.
START = dt.date(2024, 1, 1)
TIMEZONE = "UTC"
PAGE = 250
RUN_KEY = "dagster/run_key"
INGEST = {asset.key.to_user_string(): [asset] for asset in resource_assets}


def launch(
    request: dg.RunRequest,
    instance: dg.DagsterInstance,
    resources: dict[str, Any],
    defs: dg.Definitions | None = None,
) -> bool:
    """Run what a sensor requested, with its run key tag, as the daemon would: a run key
    already launched is skipped. Whether it succeeded (a failed run stays failed). The run
    is made from ``defs`` (their assets and jobs bound to their resources) if given, else
    from the code location's practice with ``resources``."""
    tags = {**request.tags, "dagster/run_key": request.run_key}
    if request.run_key and instance.get_runs(dg.RunsFilter(tags={RUN_KEY: request.run_key})):
        return True
    if request.asset_selection:
        return execute(request.asset_selection, tags, instance, resources, request.run_config, defs)
    if request.asset_check_keys:  # the freshness sensor's evaluations
        checked = [key.asset_key for key in request.asset_check_keys]
        return dg.materialize(
            [*every_asset(), *freshness_checks] if defs is None else practice_assets(defs, checked),
            selection=dg.AssetSelection.checks(*request.asset_check_keys),
            tags=tags,
            instance=instance,
            resources=resources if defs is None else None,
        ).success
    runs_from = dg.Definitions(jobs=jobs, resources=resources) if defs is None else defs
    job = runs_from.resolve_job_def(request.job_name)
    return job.execute_in_process(
        run_config=request.run_config, tags=tags, instance=instance, raise_on_error=False
    ).success


def bound_assets(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    """Every asset and check of ``defs``, each bound to its resources."""
    return list(defs.resolve_asset_graph().assets_defs)


def practice_assets(defs: dg.Definitions, keys: Any) -> list[dg.AssetsDefinition]:
    """Every asset and check of ``defs`` of the practices of ``keys`` (their key prefix),
    bound to their resources: a run never needs another practice's."""
    prefixes = {tuple(key.path[:-1]) for key in keys}
    return [
        asset
        for asset in bound_assets(defs)
        if any(tuple(key.path[:-1]) in prefixes for key in asset.keys)
        or any(tuple(key.asset_key.path[:-1]) in prefixes for key in asset.check_keys)
    ]


def execute(
    selection: Any,
    tags: dict[str, str],
    instance: dg.DagsterInstance,
    resources: dict[str, Any],
    run_config: Any = None,
    defs: dg.Definitions | None = None,
) -> bool:
    """One run of the assets of ``selection``, from ``defs`` (bound to their resources) if
    given, else from the code location's practice with ``resources``; whether it succeeded."""
    # Ingest runs need only their assets; the billing report loads its upstream too.
    if defs is None:
        names = [key.to_user_string() for key in selection]
        assets = (
            [asset for name in names for asset in INGEST[name]]
            if all(name in INGEST for name in names)
            else every_asset()
        )
    else:
        every = practice_assets(defs, selection)
        assets = [asset for asset in every if set(asset.keys) & set(selection)]
        assets = every if any(asset.dependency_keys for asset in assets) else assets
    return dg.materialize(
        assets,
        selection=selection,
        tags=tags,
        instance=instance,
        resources=resources if defs is None else None,
        run_config=run_config,
        raise_on_error=False,
    ).success


class Morning:
    """One simulated morning: every sensor ticked until it asks for nothing more, the runs it
    requests, then automation (no schedule ships: the wiring test checks it)."""

    def __init__(self, sandbox: SandboxServer, root: Path) -> None:
        from drchrono_assets.definitions import defs

        self.defs = defs
        # Where runs are made from: definitions bound to their resources (a subclass's), or
        # None: the code location's practice with ``resources``.
        self.runs_from: dg.Definitions | None = None
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
        self.failed_runs = 0
        self.tick_errors: list[str] = []  # one entry a tick, "" when it did not raise
        self.longest_tick = 0.0

    def run(self, ticks: int = 4, ticks_apart: dt.timedelta = dt.timedelta()) -> None:
        """``ticks`` ticks of every sensor, ``ticks_apart`` apart on the sandbox's clock, each
        followed by the runs it requested; then automation."""
        for _ in range(ticks):
            for sensor in self.defs.sensors or []:
                for request in self.tick(sensor.name).run_requests:
                    self.launch(request)
            self.sandbox.state.clock.advance(ticks_apart)
        self.automate()

    def tick(self, sensor_name: str) -> dg.SensorResult:
        """One evaluation of a sensor, keeping its cursor, as the daemon's tick would: a tick
        that raises keeps the old cursor and is recorded in ``tick_errors``."""
        sensor = self.defs.resolve_sensor_def(sensor_name)
        started = time.perf_counter()
        try:
            # Only the resources the sensor requires, as the daemon builds them.
            required = sensor.required_resource_keys
            with dg.build_sensor_context(
                instance=self.instance,
                cursor=self.sensor_cursors.get(sensor_name),
                resources={key: self.resources[key] for key in required},
                definitions=self.defs,
            ) as context:
                result = sensor.evaluate_tick(context)
        except Exception as error:
            self.tick_errors.append(f"{sensor_name}: {type(error).__name__}: {error}")
            return dg.SensorResult(skip_reason="tick failed")
        finally:
            self.longest_tick = max(self.longest_tick, time.perf_counter() - started)
        self.tick_errors.append("")
        self.sensor_cursors[sensor_name] = result.cursor
        return result

    def launch(self, request: dg.RunRequest) -> bool:
        """Run what a sensor requested, as the daemon would; whether it succeeded."""
        succeeded = launch(request, self.instance, self.resources, self.runs_from)
        self.failed_runs += not succeeded
        return succeeded

    def execute(self, selection: Any, tags: dict[str, str]) -> bool:
        """One run of ``selection`` with ``tags``, counted if it failed."""
        succeeded = execute(selection, tags, self.instance, self.resources, defs=self.runs_from)
        self.failed_runs += not succeeded
        return succeeded

    def automate(self) -> None:
        """Automation ticks until it asks for nothing more, as the daemon's ticks would; what
        a tick requests runs as the daemon groups it: one run for every asset requested
        unpartitioned, one per range of days for those requested over that range."""
        automated = self.runs_from
        if automated is None:
            automated = dg.Definitions(assets=self.every_asset, resources=self.resources)
        graph = automated.resolve_asset_graph()
        keys = graph.toposorted_asset_keys
        for _ in range(5):
            result = dg.evaluate_automation_conditions(
                defs=automated,
                instance=self.instance,
                cursor=self.automation_cursor,
                evaluation_time=self.sandbox.state.clock.now(),
            )
            self.automation_cursor = result.cursor
            if not result.total_requested:
                return
            # A run per partitions definition and range (none: unpartitioned), as Dagster's.
            runs: dict[tuple[Any, tuple[tuple[str, str], ...]], list[dg.AssetKey]]
            runs = defaultdict(list)
            for key in keys:
                requested = result.get_requested_partitions(key)
                partitions = graph.get(key).partitions_def
                if None in requested:
                    runs[(partitions, ())].append(key)
                for window in day_ranges(day for day in requested if day is not None):
                    runs[(partitions, tuple(sorted(window.run_tags.items())))].append(key)
            for (_, tags), selection in runs.items():
                self.execute(selection, dict(tags))


@dataclasses.dataclass
class AfterFirstMorning:
    """Day 10 of the evolving practice, its morning swept and its runs done."""

    sandbox: SandboxServer
    morning: Morning
    at: dt.datetime


@contextlib.contextmanager
def evolving_practice(
    root: Path, monkeypatch: pytest.MonkeyPatch, first_morning: int, days: int
) -> Iterator[AfterFirstMorning]:
    """The sandbox's practice evolving over ``days`` from ``START``, its clock at 04:30 of day
    ``first_morning`` (``at``), and the code location's mornings on it under ``root``; the
    change sensor's clock follows the sandbox's. No morning has run yet."""
    zone = zoneinfo.ZoneInfo(TIMEZONE)
    at = dt.datetime.combine(START + dt.timedelta(days=first_morning), dt.time(4, 30), zone)
    config = SandboxConfig(start=START, end=START + dt.timedelta(days=days), clock=at)
    with SandboxServer(config) as sandbox:
        monkeypatch.setattr(sync_sensor, "clock", sandbox.state.clock.now)
        yield AfterFirstMorning(sandbox, Morning(sandbox, root), at)


def records_by_day(resource: str, records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """``records`` of ``resource`` grouped by the day that dates each."""
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        days[record[DAY_FIELDS[resource]][:10]].append(record)
    return days


def _pages(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE))


def incremental_floor(sandbox: SandboxServer, since: dt.datetime, until: dt.datetime) -> int:
    """The fewest requests a morning can cost: each ``since`` query's changed rows in pages
    (at least one request each), plus a listing of each resource without ``since``."""
    return sum(floor_by_path(sandbox, since, until).values())


def floor_by_path(sandbox: SandboxServer, since: dt.datetime, until: dt.datetime) -> Counter[str]:
    """``incremental_floor``'s requests, by the API path they go to."""
    practice = sandbox.state.practice

    def changed(resource: str) -> list[dict[str, Any]]:
        local = [
            moment.astimezone(practice.clock.zone).replace(tzinfo=None) for moment in (since, until)
        ]
        return practice.versions_between(resource, *local)

    floor: Counter[str] = Counter()
    for spec in RESOURCES:
        if not spec.rule.captures_changes:
            floor[spec.path] += _pages(len(practice.current(spec.name)))
        elif spec.name == "transactions":  # one query per doctor
            lines = changed(spec.name)
            for doctor in practice.current("doctors"):
                floor[spec.path] += _pages(
                    sum(1 for line in lines if line["doctor"] == doctor["id"])
                )
        else:
            floor[spec.path] += _pages(len(changed(spec.name)))
    return floor


def days_between(first: dt.date, last: dt.date) -> list[str]:
    """The days from ``first`` to ``last``, both included, as partition keys."""
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def assert_dated_partitions_exact(
    morning: Morning, days: list[str], practice: int = 0, data_root: Path | None = None
) -> None:
    """Each of ``days`` of every dated asset holds exactly what the API serves now: of the
    sandbox's ``practice`` (its index), stored under ``data_root`` (default the morning's)."""
    served_by = morning.sandbox.state.practices[practice]
    root = data_root or morning.data_root
    for spec in RESOURCES:
        if spec.name in DAY_FIELDS:
            current = records_by_day(spec.name, served_by.current(spec.name))
            for day in days:
                table = read_partition(root, spec.name, day)
                assert_partition_matches(table, spec, current.get(day, []))


def assert_every_partition_exact(
    morning: Morning, days: list[str], practice: int = 0, data_root: Path | None = None
) -> int:
    """Every dated asset's and ``billing_report``'s partitions of ``days``, and the snapshots
    of the last of them, as the API's state says they should be (of ``practice`` under
    ``data_root``, as for ``assert_dated_partitions_exact``); returns how many recurring
    visits were billed (found by doctor, start time and office)."""
    assert_dated_partitions_exact(morning, days, practice, data_root)
    sandbox, root = morning.sandbox, data_root or morning.data_root
    for spec in RESOURCES:  # the last morning's snapshots are what the API serves
        if spec.rule.whole:
            served_now = sandbox.state.practices[practice].current(spec.name)
            assert_partition_matches(read_partition(root, spec.name, days[-1]), spec, served_now)
    names = doctor_names(sandbox, practice)
    billed_recurring = 0
    for day in days:
        rows, expected = report_rows(root, day), expected_rows(sandbox, day, practice)
        assert set(rows) == set(expected), day
        billed_recurring += sum(
            1 for key, want in expected.items() if "_" in key and want["line_items"]
        )
        for appointment_id, want in expected.items():
            row = rows[appointment_id]
            for name, value in want.items():
                assert row[name] == value, (day, appointment_id, name)
            assert row["doctor_name"] == names[want["doctor_id"]], (day, appointment_id)
    return billed_recurring
