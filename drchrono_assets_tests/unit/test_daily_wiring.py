"""How daily operation is wired: the change sensor, automation, and range runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from drchrono_assets.day_window import DayWindow
from drchrono_assets.definitions import defs
from drchrono_assets_tests.support.assets import read_partition
from drchrono_assets_tests.support.definitions import (
    billing_checks,
    billing_report,
    resource_assets,
)


def test_daily_operation_is_the_sensor_with_billing_following_by_automation() -> None:
    # A fixed-window schedule beside the sensor would spend every request twice.
    assert not defs.schedules
    assert [sensor.name for sensor in defs.sensors] == ["drchrono_changes", "drchrono_freshness"]
    targets = {target.job_name for target in defs.resolve_sensor_def("drchrono_changes").targets}
    assert targets == {"drchrono_ingest", "drchrono_sweep", "drchrono_finish_sweep"}
    graph = defs.resolve_asset_graph()
    for name in ("billing_report", "ar_aging", "bi_duckdb"):
        assert graph.get(dg.AssetKey(name)).automation_condition is not None, name


def test_billing_days_backfilled_before_automation_saw_them_are_built_once() -> None:
    """A practice's history backfilled before the automation daemon first evaluated its
    billing report (a practice just added, the daemon stopped meanwhile)."""
    instance = dg.DagsterInstance.ephemeral()
    days = ["2024-03-04", "2024-03-05"]
    # The three inputs' materializations (what the backfill recorded), no data needed.
    inputs = [
        dg.AssetSpec(name, partitions_def=billing_report.partitions_def)
        for name in ("appointments", "transactions", "doctors")
    ]

    @dg.multi_asset(specs=inputs)
    def backfilled() -> Iterator[dg.MaterializeResult]:
        for spec in inputs:
            yield dg.MaterializeResult(asset_key=spec.key)

    for day in days:
        assert dg.materialize([backfilled], partition_key=day, instance=instance).success
    automated = dg.Definitions(
        assets=[*inputs, billing_report],
        resources={"parquet_io_manager": dg.mem_io_manager},
    )
    at = dt.datetime(2024, 3, 10, 6, tzinfo=dt.UTC)
    first = dg.evaluate_automation_conditions(automated, instance, evaluation_time=at)
    assert first.get_requested_partitions(billing_report.key) == set(days)
    again = dg.evaluate_automation_conditions(
        automated, instance, cursor=first.cursor, evaluation_time=at + dt.timedelta(minutes=1)
    )
    assert not again.get_requested_partitions(billing_report.key)  # requested once


def test_a_range_of_billing_days_rematerializes_in_one_run(dagster_resources, sandbox_env) -> None:
    """What the sensor's runs and the automation condition do for dirty days, as one run."""
    billing_range = dg.define_asset_job(
        "billing_range",
        selection=dg.AssetSelection.assets(
            "appointments", "transactions", "doctors", "billing_report"
        ),
    )
    job = dg.Definitions(
        assets=[*resource_assets, billing_report],
        asset_checks=billing_checks,
        jobs=[billing_range],
        resources=dagster_resources,
    ).resolve_job_def("billing_range")
    result = job.execute_in_process(
        tags=DayWindow(dt.date(2024, 3, 4), dt.date(2024, 3, 8)).run_tags
    )
    assert result.success
    report_events = [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key == billing_report.key
    ]
    days = sorted(event.partition for event in report_events)
    assert days == ["2024-03-04", "2024-03-05", "2024-03-06", "2024-03-07", "2024-03-08"]
    for day in days:
        assert read_partition(sandbox_env["DRCHRONO_DATA_ROOT"], "billing_report", day)
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations["billing_report_reconciles"] is True
    assert evaluations["billing_report_one_row_per_appointment"] is True
    assert "billing_report_orphans_and_unbilled" in evaluations  # a warning may fire


def test_runs_execute_in_one_process() -> None:
    """One API client, token manager and request budget per run, and one process's memory
    (a year's backfill of the large practice: 350 MB in process, 880 MB with a process a
    step)."""
    for job_name in ("drchrono_ingest", "__ASSET_JOB"):
        assert defs.resolve_job_def(job_name).executor_def.name == "in_process"
