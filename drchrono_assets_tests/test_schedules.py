"""The daily schedules: tick evaluation gives the expected partitions, and the runs work."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.assets.billing import billing_report
from drchrono_assets.assets.ingest import resource_assets
from drchrono_assets.checks import billing_checks
from drchrono_assets.definitions import defs
from drchrono_assets.schedules import RANGE_END, RANGE_START
from drchrono_assets_tests.assets_support import read_partition

TZ = zoneinfo.ZoneInfo(settings.timezone())


def tick(schedule_name: str, when: dt.datetime) -> dg.RunRequest:
    schedule = defs.get_schedule_def(schedule_name)
    context = dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    return request


def test_daily_operation_is_the_sensor_with_billing_following_by_automation() -> None:
    assert [schedule.name for schedule in defs.schedules] == ["daily_schedule"]
    assert defs.get_schedule_def("daily_schedule").job_name == "daily_update"
    assert defs.get_sensor_def("drchrono_changes").job_name == "drchrono_ingest"
    graph = defs.resolve_asset_graph()
    for name in ("billing_report", "ar_aging"):
        assert graph.get(dg.AssetKey(name)).automation_condition is not None, name


def test_daily_schedule_materializes_yesterday_for_every_asset() -> None:
    request = tick("daily_schedule", dt.datetime(2024, 4, 15, 4, 0, tzinfo=TZ))
    assert request.partition_key == "2024-04-14"
    every = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    job_assets = defs.resolve_job_def("daily_update").asset_layer.executable_asset_keys
    assert {key.to_user_string() for key in job_assets} == every


def test_ticks_before_the_first_partition_are_skipped() -> None:
    for name in ("daily_schedule",):
        schedule = defs.get_schedule_def(name)
        context = dg.build_schedule_context(
            scheduled_execution_time=dt.datetime(2023, 12, 31, 5, 0, tzinfo=TZ)
        )
        assert not schedule.evaluate_tick(context).run_requests


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
    result = job.execute_in_process(tags={RANGE_START: "2024-03-04", RANGE_END: "2024-03-08"})
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
