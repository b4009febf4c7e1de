"""The billing report one day at a time: an empty day, a break checked in, a payment posted
later; the report built from tables by hand; and every column described for the UI."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drchrono_assets.billing.report import REPORT_SCHEMA, build_billing_report
from drchrono_assets.catalog.records import records_to_table
from drchrono_assets_tests.support.assets import (
    SPECS,
    partition_file,
    run_billing,
    served,
)
from drchrono_assets_tests.support.billing_oracle import (
    VISITS,
    expected_rows,
    report_rows,
)
from drchrono_assets_tests.support.definitions import ar_aging, billing_report
from drchrono_assets_tests.support.resources import resources_of_own
from drchrono_sandbox import SandboxConfig, SandboxServer

SUNDAY = "2024-03-10"
CHECKS = {
    "billing_report_reconciles",
    "billing_report_one_row_per_appointment",
    "billing_report_orphans_and_unbilled",
}


@pytest.mark.parametrize("asset", [billing_report, ar_aging], ids=lambda asset: asset.key.path[0])
def test_every_column_the_ui_lists_has_a_description(asset: dg.AssetsDefinition) -> None:
    schema = asset.metadata_by_key[asset.key]["dagster/column_schema"]
    assert schema.columns
    assert [c.name for c in schema.columns if not (c.description or "").strip()] == []


def test_empty_day_is_a_zero_row_file_with_the_full_schema(dagster_resources, sandbox_env) -> None:
    assert dt.date.fromisoformat(SUNDAY).weekday() == 6
    result = run_billing(dagster_resources, SUNDAY)
    assert result.success
    path = partition_file(sandbox_env["DRCHRONO_DATA_ROOT"], "billing_report", SUNDAY)
    assert [p.name for p in path.parent.iterdir()] == ["part-0.parquet"]
    table = pq.read_table(path)
    assert table.num_rows == 0
    assert table.schema.equals(REPORT_SCHEMA, check_metadata=True)
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == dict.fromkeys(CHECKS, True)


def own_sandbox_resources(own: SandboxServer, tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """Resources bound to a sandbox a test started for itself, and their data root."""
    return resources_of_own(own, tmp_path / "own"), tmp_path / "own" / "data"


def test_a_break_is_never_an_unbilled_visit(sandbox_env, tmp_path) -> None:
    day = "2024-03-05"
    with SandboxServer(SandboxConfig(start=dt.date(2024, 3, 4), end=dt.date(2024, 3, 8))) as own:
        breaks = [a for a in served(own, "appointments", day) if a["patient"] is None]
        assert breaks
        # Front desks do check breaks in: a patient-less slot with a visit status.
        with own.state.practice.lock:
            for record, status in zip(breaks, itertools.cycle(VISITS), strict=False):
                record["status"] = status
        resources, root = own_sandbox_resources(own, tmp_path)
        assert run_billing(resources, day).success
        expected = expected_rows(own, day)
    rows = report_rows(root, day)
    assert not {record["id"] for record in breaks} & set(rows)
    assert set(rows) == set(expected)


def test_new_payments_change_the_totals_on_rematerialization(sandbox_env, tmp_path) -> None:
    day = "2024-03-05"
    with SandboxServer(SandboxConfig(start=dt.date(2024, 3, 1), end=dt.date(2024, 3, 15))) as own:
        resources, root = own_sandbox_resources(own, tmp_path)
        assert run_billing(resources, day).success
        before = report_rows(root, day)
        visit = next(
            key for key, row in sorted(before.items()) if row["line_items"] and not row["is_orphan"]
        )
        line = next(
            t
            for t in own.state.practice.transactions
            if t["date"][:10] == day and t["appointment"] == int(visit)
        )
        own.state.practice.post_payment(line["id"], pt_paid=Decimal("12.34"))
        assert run_billing(resources, day).success
        after = report_rows(root, day)

    paid = Decimal("12.34")
    assert after[visit]["pt_paid"] == before[visit]["pt_paid"] + paid
    assert after[visit]["paid_total"] == before[visit]["paid_total"] + paid
    assert after[visit]["balance_total"] == before[visit]["balance_total"] - paid
    assert after[visit]["billed"] == before[visit]["billed"]
    assert {key: row for key, row in after.items() if key != visit} == {
        key: row for key, row in before.items() if key != visit
    }
    folder = partition_file(root, "billing_report", day).parent
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]
    assert len(after) == len(before)


def _day_table(spec: Any, records: list[dict[str, Any]], day: dt.date) -> pa.Table:
    table = records_to_table(records, spec.api_schema, spec.name)
    return table.append_column("date", pa.array([day] * len(records), pa.date32()))


def test_line_items_of_a_non_numeric_appointment_join_it_by_doctor_time_and_office() -> None:
    day = dt.date(2024, 3, 5)

    def visit(appointment_id: str, time: str, status: str = "Complete") -> dict[str, Any]:
        return {
            "id": appointment_id,
            "doctor": "/api/doctors/101",
            "office": "/api/offices/201",
            "patient": "/api/patients/7",
            "scheduled_time": f"2024-03-05T{time}",
            "status": status,
        }

    def line(appointment: int, time: str) -> dict[str, Any]:
        return {
            "id": appointment * 10,
            "appointment": appointment,
            "doctor": 101,
            "location": 201,
            "date": f"2024-03-05T{time}",
            "code": "99213",
            "billed": "100.00",
            "denied_flag": False,
            "billing_status": "Paid In Full",
        }

    appointments = [
        visit("8812_20240305", "09:30:00"),  # recurring: its line items carry another number
        visit("8813_20240305", "10:00:00"),  # two recurring visits share this slot
        visit("8814_20240305", "10:00:00"),
        visit("12345", "11:00:00", status="Cancelled"),  # numeric: its own lines would say so
    ]
    transactions = [line(5551, "09:30:00"), line(7777, "10:00:00"), line(9999, "11:00:00")]
    doctors = [{"id": 101, "first_name": "Ada", "last_name": "Lovelace"}]
    report = build_billing_report(
        _day_table(SPECS["appointments"], appointments, day),
        _day_table(SPECS["transactions"], transactions, day),
        _day_table(SPECS["doctors"], doctors, day),
    )
    rows = {row["appointment_id"]: row for row in report.to_pylist()}
    recurring = rows["8812_20240305"]
    assert recurring["line_items"] == 1 and recurring["billed"] == Decimal("100.00")
    assert not recurring["is_orphan"] and not recurring["is_unbilled"]
    # Ambiguous, or a numeric appointment's slot: the line items stay orphans.
    assert rows["7777"]["is_orphan"] and rows["9999"]["is_orphan"]
    assert rows["8813_20240305"]["is_unbilled"] and rows["8814_20240305"]["is_unbilled"]
    assert len(rows) == 5
