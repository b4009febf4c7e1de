"""Simulated mornings: the code location's schedules, sensors and automation, driven as the daemons
would, against a sandbox whose practice evolves (its clock moved by the caller). The sensor's
clock must follow the sandbox's: set ``drchrono_assets.sync.sensor.clock``."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import dagster as dg

from drchrono_assets.assets import resource_assets
from drchrono_assets.catalog import RESOURCES
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.sandbox import SandboxServer
from drchrono_assets.sandbox.resource_table import DAY_FIELDS
from drchrono_assets.sync.changes import day_ranges
from drchrono_assets_tests.assets_support import every_asset
from drchrono_assets_tests.conftest import api_for

PAGE = 250
INGEST = {asset.key.to_user_string(): [asset] for asset in resource_assets}


class Morning:
    """One simulated morning: every schedule and sensor, their runs, then automation."""

    def __init__(self, sandbox: SandboxServer, root: Path) -> None:
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

    def run(self) -> None:
        now = self.sandbox.state.clock.now()
        for schedule in self.defs.schedules or []:
            with dg.build_schedule_context(
                instance=self.instance, scheduled_execution_time=now, resources=self.resources
            ) as context:
                requests = schedule.evaluate_tick(context).run_requests or []
            job = self.defs.resolve_job_def(schedule.job_name)
            for request in requests:
                selection = request.asset_selection or job.asset_layer.executable_asset_keys
                self.execute(selection, request.tags, request.partition_key)
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

    def execute(
        self, selection: Any, tags: dict[str, str], partition_key: str | None = None
    ) -> None:
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
            partition_key=partition_key,
            instance=self.instance,
            resources=self.resources,
        )

    def automate(self) -> None:
        """Automation ticks until it asks for nothing more, as the daemon's ticks would; what
        they request runs in dependency order, a run per range of days."""
        automated = dg.Definitions(assets=self.every_asset, resources=self.resources)
        keys = automated.resolve_asset_graph().toposorted_asset_keys
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
            for key in keys:
                requested = result.get_requested_partitions(key)
                if None in requested:
                    self.execute([key], {})
                for window in day_ranges(day for day in requested if day is not None):
                    self.execute([key], window.run_tags)


def records_by_day(resource: str, records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    days: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        days[record[DAY_FIELDS[resource]][:10]].append(record)
    return days


def _pages(rows: int) -> int:
    return max(1, math.ceil(rows / PAGE))


def incremental_floor(sandbox: SandboxServer, since: dt.datetime, until: dt.datetime) -> int:
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
        if spec.name not in DAY_FIELDS:
            cost += _pages(len(practice.current(spec.name)))
    return cost
