"""Unit tests: dirty partitions of a change set, and the merge that brings them up to date."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from drchrono_assets.catalog.records import records_to_table
from drchrono_assets.day_window import DayWindow
from drchrono_assets.source.changes import (
    dated_after,
    day_ranges,
    dirty_days,
    local_since,
    merge_changes,
    newest_versions,
)
from drchrono_assets.source.versions import version_of, with_version
from drchrono_assets_tests.support.assets import SPECS

APPOINTMENTS = SPECS["appointments"]


def _appointments(*rows: tuple[str, str, str]) -> pa.Table:
    records = [
        {"id": id_, "scheduled_time": f"{day}T09:00:00", "status": status, "doctor": None}
        for id_, day, status in rows
    ]
    return records_to_table(records, APPOINTMENTS.api_schema, "appointments")


def test_a_rescheduled_appointment_dirties_its_old_and_new_day() -> None:
    changes = _appointments(("7", "2024-03-09", "Confirmed"), ("8", "2024-03-02", "Complete"))
    stored = {"7": "2024-03-04", "8": "2024-03-02", "9": "2024-03-05"}
    assert dirty_days(APPOINTMENTS, changes, stored) == {"2024-03-02", "2024-03-04", "2024-03-09"}


def test_merge_replaces_changed_records_moves_them_and_keeps_the_rest() -> None:
    stored = {
        "2024-03-04": _appointments(("6", "2024-03-04", "Complete"), ("7", "2024-03-04", "")),
        "2024-03-05": _appointments(("9", "2024-03-05", "Complete")),
    }
    changes = _appointments(("7", "2024-03-05", "Confirmed"), ("6", "2024-03-04", "No Show"))
    window = DayWindow(dt.date(2024, 3, 4), dt.date(2024, 3, 6))
    as_of = dt.datetime(2024, 3, 7, 9, tzinfo=dt.UTC)
    merged = merge_changes(APPOINTMENTS, changes, stored, window, as_of)
    assert {day: merged[day].column("id").to_pylist() for day in merged} == {
        "2024-03-04": ["6"],
        "2024-03-05": ["7", "9"],
        "2024-03-06": [],
    }
    assert merged["2024-03-04"]["status"].to_pylist() == ["No Show"]
    assert {table.schema.remove_metadata() for table in merged.values()} == {APPOINTMENTS.schema}
    assert {version_of(table) for table in merged.values()} == {as_of}


def test_a_fetched_day_is_taken_whole_and_keeps_its_own_version() -> None:
    fetched_at = dt.datetime(2024, 3, 8, tzinfo=dt.UTC)
    fetched = {"2024-03-05": with_version(_appointments(("9", "2024-03-05", "")), fetched_at)}
    changes = _appointments(("7", "2024-03-05", "Confirmed"))
    window = DayWindow(dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    as_of = dt.datetime(2024, 3, 7, tzinfo=dt.UTC)
    merged = merge_changes(APPOINTMENTS, changes, {}, window, as_of, fetched)
    assert merged["2024-03-05"]["id"].to_pylist() == ["9"]
    assert version_of(merged["2024-03-05"]) == fetched_at


def test_dirty_days_run_as_consecutive_ranges() -> None:
    windows = day_ranges(["2024-03-05", "2024-03-03", "2024-03-04", "2024-03-09"])
    assert [(w.first.isoformat(), w.last.isoformat()) for w in windows] == [
        ("2024-03-03", "2024-03-05"),
        ("2024-03-09", "2024-03-09"),
    ]


def test_cursor_is_the_api_time_in_the_practice_zone_less_an_overlap() -> None:
    api_time = dt.datetime(2024, 3, 5, 9, 30, tzinfo=dt.UTC)
    assert local_since(api_time, "America/New_York") == "2024-03-05T04:28:00"


def test_waiting_records_give_way_to_newer_versions_and_leave_once_dated() -> None:
    waiting = _appointments(("7", "2024-03-09", "Confirmed"), ("8", "2024-03-10", "Confirmed"))
    changes = _appointments(("8", "2024-03-10", "Cancelled"), ("9", "2024-03-04", "Complete"))
    combined = newest_versions(APPOINTMENTS, waiting, changes)
    by_id = dict(zip(combined["id"].to_pylist(), combined["status"].to_pylist(), strict=True))
    assert by_id == {"7": "Confirmed", "8": "Cancelled", "9": "Complete"}
    assert dated_after(APPOINTMENTS, combined, "2024-03-09")["id"].to_pylist() == ["8"]
