"""The billing report of a week of the sandbox, materialized in one range run: every
expectation summed from the raw records (one day at a time, and built from tables by hand:
test_billing_report_days.py)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from drchrono_assets.billing.report import REPORT_SCHEMA, doctor_summary_markdown
from drchrono_assets_tests.support.assets import (
    read_partition,
    run_billing,
    served,
)
from drchrono_assets_tests.support.billing_oracle import (
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
from drchrono_assets_tests.support.definitions import billing_report
from drchrono_assets_tests.support.resources import resources_of_own
from drchrono_sandbox import SandboxServer

# Tuesday to Friday; the seed-7 sandbox has an orphan line item and recurring visits here.
WEEK = ("2024-03-19", "2024-03-20", "2024-03-21", "2024-03-22")
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


def test_a_day_without_rows_sums_to_a_zero_total_line() -> None:
    assert doctor_summary_markdown(REPORT_SCHEMA.empty_table()).splitlines()[2:] == [
        "| **Total** | 0 | 0.00 | 0.00 | 0.00 | - |"
    ]
