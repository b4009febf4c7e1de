"""Freshness checks of the dated assets: each fails once yesterday's partition is late.

The checks and their sensor read Dagster's clock, so each step freezes it at a fixed
practice-local moment. The morning's materializations are reported to an ephemeral instance
the way the runs record them, because the checks read only the event log. Nothing here
touches the network: connecting a socket raises, and so does using the drchrono API resource.
"""

from __future__ import annotations

import datetime as dt
import socket
import zoneinfo
from collections.abc import Iterable, Iterator

import dagster as dg
import pytest

# Dagster's own clock freezer: the checks and the sensor take "now" from dagster._time.
from dagster._core.test_utils import freeze_time

from drchrono_assets import settings
from drchrono_assets.checks.freshness import FRESHNESS_SENSOR_NAME, deadline_hour
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets_tests.support.definitions import (
    billing_report,
    daily_partitions,
    freshness_checks,
    freshness_sensor,
    resource_assets,
)
from drchrono_assets_tests.support.imports import fresh_python

ZONE = zoneinfo.ZoneInfo(daily_partitions.timezone)
# A morning well inside the partitions, whatever DRCHRONO_START_DATE is.
TODAY = dt.date.fromisoformat(daily_partitions.get_first_partition_key()) + dt.timedelta(days=30)
YESTERDAY = (TODAY - dt.timedelta(days=1)).isoformat()
DAY_BEFORE = (TODAY - dt.timedelta(days=2)).isoformat()
WEEK_AGO = (TODAY - dt.timedelta(days=7)).isoformat()
APPOINTMENTS, BILLING_REPORT = dg.AssetKey("appointments"), dg.AssetKey("billing_report")
DATED_ASSETS = [*resource_assets, billing_report]
DEADLINE_HOUR = deadline_hour(settings.DEFAULT_SYNC_HOUR)  # the default settings' deadline
DEADLINE_CRON = f"0 {DEADLINE_HOUR} * * *"
ALL_KEYS = [asset.key for asset in DATED_ASSETS]
INGEST_KEYS = [key for key in ALL_KEYS if key != BILLING_REPORT]
CHECK_KEYS = {dg.AssetCheckKey(key, "freshness_check") for key in ALL_KEYS}


def at(hour: int, minute: int = 0, day: dt.date = TODAY) -> dt.datetime:
    """A practice-local moment of ``day``."""
    return dt.datetime.combine(day, dt.time(hour, minute), ZONE)


@dg.resource
def refused_api(_: dg.InitResourceContext) -> None:
    """A drchrono resource that fails the run if anything sets it up."""
    raise AssertionError("evaluating freshness must not use the drchrono API")


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("a freshness test opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def defs(tmp_path) -> dg.Definitions:
    """The checks over the ingest assets and billing_report, as the code location holds them."""
    return dg.Definitions(
        assets=DATED_ASSETS,
        asset_checks=freshness_checks,
        sensors=[freshness_sensor],
        resources={
            "drchrono": refused_api,
            "parquet_io_manager": HiveParquetIOManager(data_root=str(tmp_path / "data")),
        },
    )


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.ephemeral() as instance:
        yield instance


class Operations:
    """The sensor ticked, and the runs it requests executed, as the daemons would."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs = defs
        self.instance = instance
        self.sensor = defs.resolve_sensor_def(FRESHNESS_SENSOR_NAME)
        self.cursor: str | None = None

    def materialized(self, when: dt.datetime, day: str, keys: Iterable[dg.AssetKey]) -> None:
        """Record that a run materialized partition ``day`` of ``keys`` at ``when``."""
        with freeze_time(when):
            for key in keys:
                self.instance.report_runless_asset_event(
                    dg.AssetMaterialization(asset_key=key, partition=day)
                )

    def tick(self, when: dt.datetime) -> dict[dg.AssetCheckKey, dg.AssetCheckEvaluation]:
        """One sensor tick at ``when``, then its run: the evaluations that run recorded."""
        with freeze_time(when):
            with dg.build_sensor_context(
                instance=self.instance, cursor=self.cursor, definitions=self.defs
            ) as context:
                result = self.sensor.evaluate_tick(context)
            self.cursor = result.cursor
            if not result.run_requests:
                return {}
            (request,) = result.run_requests
            # A run of checks only: no asset is materialized, so no API request.
            assert not request.asset_selection
            run = dg.materialize(
                [*(self.defs.assets or []), *(self.defs.asset_checks or [])],
                selection=dg.AssetSelection.checks(*request.asset_check_keys),
                instance=self.instance,
                resources=self.defs.resources,
                tags=request.tags,
            )
        assert run.success
        evaluations = {e.asset_check_key: e for e in run.get_asset_check_evaluations()}
        assert set(evaluations) == set(request.asset_check_keys)
        return evaluations

    def ui_status(self) -> dict[dg.AssetCheckKey, str]:
        """What the UI shows for each check: its latest execution's status."""
        records = self.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            list(CHECK_KEYS)
        )
        return {key: record.status.value for key, record in records.items()}


def failed(evaluations: dict[dg.AssetCheckKey, dg.AssetCheckEvaluation]) -> set[dg.AssetKey]:
    return {key.asset_key for key, evaluation in evaluations.items() if not evaluation.passed}


def test_every_dated_asset_has_a_check_due_hours_after_the_sweep(defs) -> None:
    graph = defs.resolve_asset_graph()
    assert graph.asset_check_keys == CHECK_KEYS
    assert {key.asset_key for key in CHECK_KEYS} >= {BILLING_REPORT, APPOINTMENTS}
    assert all(graph.get(key.asset_key).partitions_def == daily_partitions for key in CHECK_KEYS)
    # A few hours for the morning's runs.
    assert settings.DEFAULT_SYNC_HOUR < DEADLINE_HOUR <= settings.DEFAULT_SYNC_HOUR + 4
    assert deadline_hour(22) == 23  # never past the practice's day
    for key in CHECK_KEYS:
        params = graph.get_check_spec(key).metadata["dagster/freshness_params"].value
        assert params == {"deadline_cron": DEADLINE_CRON, "timezone": daily_partitions.timezone}
    # Running without an operator starting it: a stopped sensor would be a silent wait.
    assert freshness_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_check_fails_when_yesterday_was_not_materialized_by_the_deadline(defs, instance) -> None:
    ops = Operations(defs, instance)
    ops.materialized(at(5, day=TODAY - dt.timedelta(days=1)), DAY_BEFORE, ALL_KEYS)
    # This morning's sweep could not finish: appointments' run for yesterday failed, so the
    # billing report never followed. A merge into an older day did succeed, later than all.
    ops.materialized(at(5), YESTERDAY, [key for key in INGEST_KEYS if key != APPOINTMENTS])
    ops.materialized(at(6), WEEK_AGO, [APPOINTMENTS])

    # Before the deadline the morning still has time: yesterday is not yet expected.
    early = ops.tick(at(DEADLINE_HOUR - 1, 59))
    assert set(early) == CHECK_KEYS and not failed(early)

    # Past the deadline the sensor evaluates every check again, and the late ones fail.
    late = ops.tick(at(DEADLINE_HOUR, 30))
    assert set(late) == CHECK_KEYS
    assert failed(late) == {APPOINTMENTS, BILLING_REPORT}
    for key in (APPOINTMENTS, BILLING_REPORT):
        evaluation = late[dg.AssetCheckKey(key, "freshness_check")]
        assert evaluation.severity == dg.AssetCheckSeverity.ERROR
        assert YESTERDAY in (evaluation.description or "")
    status = ops.ui_status()
    assert {key.asset_key for key, value in status.items() if value == "FAILED"} == {
        APPOINTMENTS,
        BILLING_REPORT,
    }
    assert all(value in ("FAILED", "SUCCEEDED") for value in status.values())

    # Nothing new, nothing to evaluate: the failures stay on screen.
    assert ops.tick(at(DEADLINE_HOUR, 45)) == {}
    assert set(ops.ui_status().values()) == {"FAILED", "SUCCEEDED"}

    # The late runs arrive: the sensor evaluates the failed checks, and only those, again.
    ops.materialized(at(9), YESTERDAY, [APPOINTMENTS, BILLING_REPORT])
    recovered = ops.tick(at(9, 10))
    assert {key.asset_key for key in recovered} == {APPOINTMENTS, BILLING_REPORT}
    assert not failed(recovered)
    assert set(ops.ui_status().values()) == {"SUCCEEDED"}


def test_check_passes_when_yesterday_was_materialized_by_the_deadline(defs, instance) -> None:
    ops = Operations(defs, instance)
    ops.materialized(at(5), YESTERDAY, ALL_KEYS)

    passed = ops.tick(at(DEADLINE_HOUR, 30))
    assert set(passed) == CHECK_KEYS and not failed(passed)
    assert set(ops.ui_status().values()) == {"SUCCEEDED"}
    # Fresh until the next deadline: no evaluation in between.
    assert ops.tick(at(23)) == {}

    # The next morning nothing ran: past its deadline every check fails.
    tomorrow = TODAY + dt.timedelta(days=1)
    next_morning = ops.tick(at(DEADLINE_HOUR, 30, day=tomorrow))
    assert failed(next_morning) == set(ALL_KEYS)


def test_deadline_follows_the_practice_timezone() -> None:
    """The deadline is read in the zone the partitions use (DRCHRONO_TIMEZONE), and follows
    the sync hour (DRCHRONO_SYNC_HOUR), as the code location is built."""
    probe = (
        "from drchrono_assets.definitions import defs; "
        "zone = defs.resolve_assets_def('appointments').partitions_def.timezone; "
        "specs = [s for c in defs.asset_checks for s in c.check_specs "
        "if 'dagster/freshness_params' in s.metadata]; "
        "params = specs[0].metadata['dagster/freshness_params'].value; "
        "print(zone, params['timezone'], params['deadline_cron'])"
    )
    env = {"DRCHRONO_TIMEZONE": "America/Chicago", "DRCHRONO_SYNC_HOUR": "6", "HOME": "/tmp"}
    zone, check_zone, *cron = fresh_python(probe, env).split()
    assert (zone, check_zone, " ".join(cron)) == ("America/Chicago", "America/Chicago", "0 9 * * *")
