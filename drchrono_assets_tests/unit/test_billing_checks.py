"""The billing checks: a result for the run's days, and each day's own.

A range run (a single-run backfill, ``make demo``, the sensor's runs) must leave each check
with a result the UI shows as the check's status (never Skipped), and every day of the run
with its own verdict: a day that fails fails the check, the other days pass.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drchrono_assets.checks import build_billing_checks
from drchrono_assets.checks.billing_checks import orphans_and_unbilled
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.practice_names import PracticeNames
from drchrono_assets_tests.support.assets import materialize, partition_file
from drchrono_assets_tests.support.billing_oracle import expected_rows
from drchrono_assets_tests.support.definitions import (
    billing_checks,
    billing_report,
    resource_assets,
)
from drchrono_assets_tests.support.resources import resources_of_own
from drchrono_sandbox import SandboxServer

# Tuesday to Friday; the seed-7 sandbox has an orphan line item here, and unbilled visits.
WEEK = ("2024-03-19", "2024-03-20", "2024-03-21", "2024-03-22")
CHECKS = sorted(check.check_key.name for check in billing_checks)
ALL = [*resource_assets, billing_report, *billing_checks]
VERDICT_ROW = re.compile(r"^\| (\d{4}-\d\d-\d\d) \| (\w+) \|", re.M)


def day_verdicts(evaluation: dg.AssetCheckEvaluation | dg.AssetCheckResult) -> dict[str, str]:
    """Each day's verdict in a check result's ``days`` table: passed or failed."""
    return dict(VERDICT_ROW.findall(evaluation.metadata["days"].value))


@dataclass(frozen=True)
class Reported:
    """What a check reported in a run: the result for its days, and each day's."""

    run: dg.AssetCheckEvaluation
    days: dict[str, dg.AssetCheckEvaluation]


def reported(instance: dg.DagsterInstance, run_id: str) -> dict[str, Reported]:
    """Each billing check's results as the instance stored them for the run."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    by_check: dict[str, list[dg.AssetCheckEvaluation]] = defaultdict(list)
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        by_check[evaluation.check_name].append(evaluation)
    assert sorted(by_check) == CHECKS
    found = {}
    for name, evaluations in by_check.items():
        (run,) = [e for e in evaluations if e.partition is None]  # one for the run's days
        days = {e.partition: e for e in evaluations if e.partition is not None}
        assert len(days) == len(evaluations) - 1, name  # and one for each day, once
        found[name] = Reported(run, days)
    return found


@dataclass(frozen=True)
class Week:
    """``WEEK`` materialized in one range run, in an instance and data root of its own."""

    instance: dg.DagsterInstance
    result: dg.ExecuteInProcessResult
    data_root: Path
    resources: dict[str, Any]


@pytest.fixture(scope="module")
def week(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Week]:
    root = tmp_path_factory.mktemp("billing_checks")
    resources = resources_of_own(sandbox, root)
    with dg.instance_for_test() as instance:
        result = materialize(resources, WEEK[0], WEEK[-1], instance=instance, assets=ALL)
        assert result.success
        yield Week(instance, result, root / "data", resources)


def test_a_range_run_gives_every_day_its_own_passed_result_in_each_check(week) -> None:
    for name, found in reported(week.instance, week.result.run_id).items():
        assert found.run.passed is True, (name, found.run.description)
        assert found.run.metadata["days_checked"].value == len(WEEK)
        assert day_verdicts(found.run) == dict.fromkeys(WEEK, "passed"), name
        assert sorted(found.days) == list(WEEK), name
        for day, evaluation in found.days.items():
            assert evaluation.passed is True, (name, day)
            assert evaluation.severity == found.run.severity, (name, day)


def test_a_failing_day_fails_the_check_and_the_other_days_pass(sandbox, week) -> None:
    rows = {day: expected_rows(sandbox, day).values() for day in WEEK}
    orphans = {day: sum(row["is_orphan"] for row in rows[day]) for day in WEEK}
    unbilled = {day: sum(row["is_unbilled"] for row in rows[day]) for day in WEEK}
    failing = {day for day, count in unbilled.items() if count > 1}
    assert failing and failing != set(WEEK), unbilled  # pick a week with both kinds of day
    # The report and its checks again over the stored week (no request to the API), with
    # the checks of a practice that warns above 1 unbilled visit a day.
    strict = build_billing_checks(billing_report, PracticeNames(), orphan_limit=2, unbilled_limit=1)
    selection = dg.AssetSelection.assets(billing_report) | dg.AssetSelection.checks(*strict)
    assets = [*resource_assets, billing_report, *strict]
    result = materialize(
        week.resources,
        WEEK[0],
        WEEK[-1],
        instance=week.instance,
        assets=assets,
        selection=selection,
    )
    assert result.success  # the check that fails only warns
    found = reported(week.instance, result.run_id)
    warning = found.pop("billing_report_orphans_and_unbilled")
    assert warning.run.passed is False
    assert warning.run.severity == dg.AssetCheckSeverity.WARN
    assert day_verdicts(warning.run) == {d: "failed" if d in failing else "passed" for d in WEEK}
    for day, evaluation in warning.days.items():
        assert evaluation.passed is (day not in failing), day
        assert evaluation.severity == dg.AssetCheckSeverity.WARN
        assert evaluation.metadata["unbilled_visits"].value == unbilled[day]
        assert evaluation.metadata["orphan_rows"].value == orphans[day]
        counts = f"{orphans[day]} orphan row(s), {unbilled[day]} unbilled visit(s)"
        assert (f"{day}: {counts}" in warning.run.description) is (day in failing), day
        assert evaluation.description == (counts if day in failing else None), day
    for name, other in found.items():
        assert other.run.passed is True, name
        assert all(evaluation.passed for evaluation in other.days.values()), name


def test_checks_count_the_orphans_and_unbilled_visits_of_every_day(sandbox, week) -> None:
    found = reported(week.instance, week.result.run_id)
    expected = [row for day in WEEK for row in expected_rows(sandbox, day).values()]
    metadata = found["billing_report_orphans_and_unbilled"].run.metadata
    assert metadata["orphan_rows"].value == sum(row["is_orphan"] for row in expected) > 0
    assert metadata["unbilled_visits"].value == sum(row["is_unbilled"] for row in expected) > 0
    assert found["billing_report_reconciles"].run.metadata["mismatches"].value == 0
    repeated = found["billing_report_one_row_per_appointment"].run.metadata
    assert repeated["repeated_appointments"].value == 0


def check_alone(
    resources: dict[str, Any], check: dg.AssetChecksDefinition, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    """A run of ``check`` alone, as the UI's Execute launches it: no partition, so it checks
    every day the report holds (Dagster refuses a partition for a run without an asset)."""
    return dg.materialize(
        ALL,
        resources=resources,
        selection=dg.AssetSelection.checks(check),
        raise_on_error=raise_on_error,
    )


def test_reconciliation_fails_on_a_tampered_day_only(week, tmp_path) -> None:
    root = tmp_path / "data"
    shutil.copytree(week.data_root, root)
    resources = {**week.resources, "parquet_io_manager": HiveParquetIOManager(data_root=str(root))}
    day = WEEK[1]
    reconciles = billing_checks[0]

    untouched = check_alone(resources, reconciles)
    # A run without partition: one result, for every stored day, and none for a day alone.
    [evaluation] = untouched.get_asset_check_evaluations()
    assert evaluation.passed is True and evaluation.partition is None
    assert day_verdicts(evaluation) == dict.fromkeys(WEEK, "passed")

    path = partition_file(root, "billing_report", day)
    table = pq.read_table(path)
    index = table.schema.get_field_index("billed")
    billed = table["billed"].to_pylist()
    billed[0] += Decimal("0.01")
    tampered = table.set_column(
        index, table.schema.field(index), pa.array(billed, table.schema.field(index).type)
    )
    assert tampered.schema.equals(table.schema, check_metadata=True)
    pq.write_table(tampered, path)

    result = check_alone(resources, reconciles, raise_on_error=False)
    assert not result.success  # blocking, severity ERROR: the step fails
    assert not result.get_asset_materialization_events()  # the report itself was not rebuilt
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == "billing_report_reconciles"
    assert evaluation.passed is False
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    assert evaluation.metadata["mismatches"].value == 1
    assert f"| {day} | billed |" in evaluation.metadata["details"].value
    assert day_verdicts(evaluation) == {d: "failed" if d == day else "passed" for d in WEEK}


def test_a_warning_check_says_which_days_and_why() -> None:
    report = pa.table(
        {
            "date": ["2024-03-05", "2024-03-05", "2024-03-06"],
            "is_orphan": [False, False, False],
            "is_unbilled": [True, True, True],
        }
    )
    days = ["2024-03-05", "2024-03-06", "2024-03-07"]
    outcome = orphans_and_unbilled(days, report, orphan_limit=2, unbilled_limit=1)
    result = outcome.result
    assert result.passed is False
    assert result.description.startswith("2024-03-05: 0 orphan row(s), 2 unbilled visit(s)")
    assert "unbilled visits a day" in result.description
    table = result.metadata["days"].value
    assert "| 2024-03-05 | failed | 0 | 2 |" in table
    assert "| 2024-03-06 | passed | 0 | 1 |" in table
    assert "| 2024-03-07 | passed | 0 | 0 |" in table  # a day without rows is listed too
    assert [day for day, r in outcome.by_day.items() if not r.passed] == ["2024-03-05"]


def test_the_checks_are_not_partitioned() -> None:
    """A partitioned check's range-run result is attached to no day, and the UI shows the
    range's days as Skipped (see billing_checks.py)."""
    for check in billing_checks:
        (spec,) = check.check_specs
        assert spec.partitions_def is None, spec.name
