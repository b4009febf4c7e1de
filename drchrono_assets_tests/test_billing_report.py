"""The billing report against the sandbox, every expectation summed from the raw records."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from drchrono_assets.assets.billing_reports import ar_aging, billing_report
from drchrono_assets.assets.ingest import resource_assets
from drchrono_assets.billing.report import REPORT_SCHEMA, build_billing_report
from drchrono_assets.catalog.records import records_to_table
from drchrono_assets.checks import billing_checks
from drchrono_assets_tests.assets_support import (
    SPECS,
    materialize,
    partition_file,
    read_partition,
    served,
)
from drchrono_assets_tests.billing_oracle import (
    MONEY,
    VISITS,
    ZERO,
    doctor_names,
    expected_rows,
    line_owners,
    money_sums,
    numeric_id,
    orphan_days,
    path_id,
    report_rows,
)
from drchrono_assets_tests.conftest import resources_of_own
from drchrono_sandbox import SandboxConfig, SandboxServer

# Tuesday to Friday; the seed-7 sandbox has an orphan line item and recurring visits here.
WEEK = ("2024-03-19", "2024-03-20", "2024-03-21", "2024-03-22")
SUNDAY = "2024-03-10"
CHECKS = {
    "billing_report_reconciles",
    "billing_report_one_row_per_appointment",
    "billing_report_orphans_and_unbilled",
}
FORBIDDEN_COLUMNS = {
    "patient",
    "patient_name",
    "first_name",
    "last_name",
    "middle_name",
    "nick_name",
    "name",
    "date_of_birth",
    "dob",
    "birth_date",
    "social_security_number",
    "ssn",
    "gender",
    "email",
    "address",
    "city",
    "zip_code",
    "home_phone",
    "cell_phone",
    "office_phone",
    "reason",
    "notes",
    "icd9_codes",
    "blood_pressure",
    "chart_id",
    "primary_insurance_company",
}


@dataclass(frozen=True)
class RangeRun:
    """One run of the ingest assets, the report and its checks over ``WEEK``."""

    result: dg.ExecuteInProcessResult
    data_root: Path
    resources: dict[str, Any]


def run_billing(
    resources: dict[str, Any],
    first: str,
    last: str | None = None,
    selection: dg.AssetSelection | None = None,
    raise_on_error: bool = True,
) -> dg.ExecuteInProcessResult:
    """Materialize ingest, billing_report and its checks for one day or ``first..last``."""
    return materialize(
        resources,
        first,
        last,
        raise_on_error=raise_on_error,
        assets=[*resource_assets, billing_report, *billing_checks],
        selection=selection,
    )


@pytest.fixture(scope="module")
def week(sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory) -> RangeRun:
    """The four weekdays of ``WEEK`` materialized in one range run, in a data root of its own."""
    root = tmp_path_factory.mktemp("billing_week")
    resources = resources_of_own(sandbox, root)
    result = run_billing(resources, WEEK[0], WEEK[-1])
    assert result.success
    return RangeRun(result=result, data_root=root / "data", resources=resources)


def test_day_totals_equal_the_transactions_exactly(sandbox, week) -> None:
    for day in WEEK:
        table = read_partition(week.data_root, "billing_report", day)
        transactions = served(sandbox, "transactions", day)
        assert transactions, day
        for name in MONEY:
            reported = sum(table[name].to_pylist(), ZERO)
            assert reported == sum((Decimal(t[name]) for t in transactions), ZERO), (day, name)


def test_every_row_matches_its_appointment_and_line_items(sandbox, week) -> None:
    for day in WEEK:
        rows, expected = report_rows(week.data_root, day), expected_rows(sandbox, day)
        assert set(rows) == set(expected), day
        names = doctor_names(sandbox)
        for appointment_id, want in expected.items():
            row = rows[appointment_id]
            for name, value in want.items():
                assert row[name] == value, (day, appointment_id, name)
            assert row["doctor_name"] == names[want["doctor_id"]], (day, appointment_id)


def test_money_is_exact_decimal(sandbox, week) -> None:
    table = read_partition(week.data_root, "billing_report", WEEK[1])
    for name in MONEY:
        assert pa.types.is_decimal(table.schema.field(name).type), name
        assert not pa.types.is_floating(table.schema.field(name).type), name
    # Sums whose cents a binary float cannot hold exactly (not a multiple of 5 cents).
    expected = expected_rows(sandbox, WEEK[1])
    with_cents = [
        (appointment_id, want["allowed"])
        for appointment_id, want in expected.items()
        if want["allowed"] % 1 and want["allowed"] * 100 % 5
    ]
    assert with_cents, "no amount with odd cents on the day"
    rows = report_rows(week.data_root, WEEK[1])
    for appointment_id, allowed in with_cents:
        stored = rows[appointment_id]["allowed"]
        assert isinstance(stored, Decimal)
        assert stored == allowed and str(stored) == str(allowed)


def test_orphan_line_items_are_kept(sandbox, week) -> None:
    found = orphan_days(sandbox, WEEK)
    assert found, "the week has no orphan line item: pick another week"
    for day, orphans in found.items():
        rows = report_rows(week.data_root, day)
        flagged = {key: row for key, row in rows.items() if row["is_orphan"]}
        assert set(flagged) == {str(number) for number in orphans}, day
        for number in orphans:
            lines = [t for t in served(sandbox, "transactions", day) if t["appointment"] == number]
            row = flagged[str(number)]
            assert row["line_items"] == len(lines)
            assert {name: row[name] for name in MONEY} == money_sums(lines)
            assert row["status"] is None and row["patient_id"] is None
            assert not row["is_unbilled"]
    for day in WEEK:
        rows = report_rows(week.data_root, day)
        transactions = served(sandbox, "transactions", day)
        assert sum(row["line_items"] for row in rows.values()) == len(transactions), day


def test_unbilled_visits_are_found(sandbox, week) -> None:
    seen_unbilled, left_out = 0, set()
    for day in WEEK:
        rows = report_rows(week.data_root, day)
        billed = set(line_owners(sandbox, day).values())
        appointments = served(sandbox, "appointments", day)
        for appointment in appointments:
            appointment_id = appointment["id"]
            has_lines = appointment_id in billed
            if appointment["patient"] is None:  # a break
                assert appointment_id not in rows, (day, appointment_id)
            elif appointment["status"] in VISITS and not has_lines:
                row = rows[appointment_id]
                assert row["is_unbilled"] and not row["is_orphan"], (day, appointment_id)
                assert row["line_items"] == 0 and row["denied_line_items"] == 0
                assert row["procedure_codes"] == [] and row["billing_statuses"] == []
                assert all(row[name] == ZERO for name in MONEY), (day, appointment_id)
                assert row["patient_id"] == path_id(appointment["patient"])
                seen_unbilled += 1
            elif not has_lines:
                assert appointment_id not in rows, (day, appointment_id, appointment["status"])
                left_out.add(appointment["status"])
        unbilled = {key for key, row in rows.items() if row["is_unbilled"]}
        assert all(rows[key]["line_items"] == 0 for key in unbilled)
    assert seen_unbilled > 0
    assert {"Cancelled", "No Show"} <= left_out, left_out


def test_recurring_visits_are_billed_by_doctor_start_time_and_office(sandbox, week) -> None:
    """A recurring visit's id is no number, so its lines carry one that names no appointment:
    the report finds the visit by the doctor, start time and office the lines document."""
    billed_visits = 0
    for day in WEEK:
        rows, lines = report_rows(week.data_root, day), served(sandbox, "transactions", day)
        for appointment in served(sandbox, "appointments", day):
            if numeric_id(appointment["id"]) is not None or appointment["status"] not in VISITS:
                continue
            start = dt.datetime.fromisoformat(appointment["scheduled_time"])
            own = [
                line
                for line in lines
                if dt.datetime.fromisoformat(line["date"]) == start
                and line["doctor"] == path_id(appointment["doctor"])
                and line["location"] == path_id(appointment["office"])
            ]
            row = rows[appointment["id"]]
            assert not row["is_orphan"], appointment["id"]
            assert row["line_items"] == len(own), appointment["id"]
            assert {name: row[name] for name in MONEY} == money_sums(own), appointment["id"]
            assert not any(str(line["appointment"]) in rows for line in own)  # no orphan row
            billed_visits += bool(own)
    assert billed_visits > 0, "no billed recurring visit this week: pick another week"


def test_report_holds_no_patient_details(week) -> None:
    for day in WEEK:
        names = set(read_partition(week.data_root, "billing_report", day).column_names)
        assert "patient_id" in names
        assert not names & FORBIDDEN_COLUMNS, names & FORBIDDEN_COLUMNS
        assert not {name for name in names if "patient" in name} - {"patient_id"}
    assert not set(REPORT_SCHEMA.names) & FORBIDDEN_COLUMNS


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


def test_materialization_metadata_summarizes_each_day(sandbox, week) -> None:
    events = {
        event.partition: event.materialization.metadata
        for event in week.result.get_asset_materialization_events()
        if event.asset_key == billing_report.key
    }
    assert sorted(events) == list(WEEK)
    names = doctor_names(sandbox)
    for day in WEEK:
        expected = expected_rows(sandbox, day)
        metadata = events[day]
        billed = sum((Decimal(t["billed"]) for t in served(sandbox, "transactions", day)), ZERO)
        assert metadata["total_billed"].value == f"{billed:.2f}", day

        markdown = metadata["billing_by_doctor"].value
        lines = markdown.splitlines()
        header = [cell.strip() for cell in lines[0].strip("|").split("|")]
        for title in ("Doctor", "Billed", "Paid", "Balance", "Denial rate"):
            assert title in header, title
        cells = {
            parts[0]: dict(zip(header, parts, strict=True))
            for line in lines[2:]
            for parts in [[cell.strip() for cell in line.strip("|").split("|")]]
        }
        per_doctor: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in expected.values():
            per_doctor[names[row["doctor_id"]]].append(row)
        assert set(cells) == {*per_doctor, "**Total**"}, day
        assert len(lines) == 2 + len(per_doctor) + 1, day
        for doctor, rows in [*per_doctor.items(), ("**Total**", list(expected.values()))]:
            items = sum(row["line_items"] for row in rows)
            denied = sum(row["denied_line_items"] for row in rows)
            want = {
                "Visits": str(sum(not row["is_orphan"] for row in rows)),
                "Billed": f"{sum((row['billed'] for row in rows), ZERO):,.2f}",
                "Paid": f"{sum((row['paid_total'] for row in rows), ZERO):,.2f}",
                "Balance": f"{sum((row['balance_total'] for row in rows), ZERO):,.2f}",
                "Denial rate": f"{denied / items:.1%}" if items else "-",
            }
            assert {key: cells[doctor][key] for key in want} == want, (day, doctor)


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
