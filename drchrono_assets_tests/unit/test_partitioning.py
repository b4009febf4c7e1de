"""Unit tests: day windows and how each partition rule plans its queries."""

import datetime as dt

import pyarrow as pa

from drchrono_assets.catalog.endpoints import APPOINTMENTS, DOCTORS, DOCUMENTS, TRANSACTIONS
from drchrono_assets.day_window import DayWindow
from drchrono_assets.source.extraction import resolve_queries

MARCH = DayWindow(dt.date(2024, 3, 1), dt.date(2024, 3, 31))


class Doctors:
    def list_records(self, path, params=None):
        assert path == "/api/doctors"
        return [{"id": 101}, {"id": 102}]


def test_window_chunks_cover_the_window_without_overlap() -> None:
    window = DayWindow(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    chunks = window.chunks(190)
    assert [c.first for c in chunks] == [dt.date(2024, 1, 1), dt.date(2024, 7, 9)]
    assert chunks[-1].last == dt.date(2024, 12, 31)
    assert sum(len(c.days) for c in chunks) == 366


def test_appointments_one_date_range_per_190_days() -> None:
    rule = APPOINTMENTS.rule
    day = DayWindow(dt.date(2024, 3, 5), dt.date(2024, 3, 5))
    assert resolve_queries(rule.queries(day), Doctors()) == [{"date": "2024-03-05"}]
    assert resolve_queries(rule.queries(MARCH), Doctors()) == [
        {"date_range": "2024-03-01/2024-03-31"}
    ]
    year = DayWindow(dt.date(2024, 1, 1), dt.date(2024, 12, 31))
    assert [q["date_range"] for q in resolve_queries(rule.queries(year), Doctors())] == [
        "2024-01-01/2024-07-08",
        "2024-07-09/2024-12-31",
    ]


def test_transactions_one_since_sweep_per_doctor() -> None:
    assert resolve_queries(TRANSACTIONS.rule.queries(MARCH), Doctors()) == [
        {"since": "2024-03-01T00:00:00", "doctor": 101},
        {"since": "2024-03-01T00:00:00", "doctor": 102},
    ]
    assert resolve_queries(DOCUMENTS.rule.queries(MARCH), Doctors()) == [
        {"since": "2024-03-01T00:00:00"}
    ]


def test_dated_rows_are_kept_by_their_day_and_outside_days_dropped() -> None:
    table = pa.table(
        {"service_time": pa.array([dt.datetime(2024, 3, 1, 9), dt.datetime(2024, 4, 2, 9)])}
    )
    days = TRANSACTIONS.rule.split(table, MARCH, dt.datetime.now(dt.UTC))
    assert len(days) == 31
    assert days["2024-03-01"].num_rows == 1
    assert sum(t.num_rows for t in days.values()) == 1


def test_snapshot_is_stamped_and_written_to_every_day() -> None:
    taken = dt.datetime(2024, 4, 1, 12, tzinfo=dt.UTC)
    table = DOCTORS.api_schema.empty_table()
    days = DOCTORS.rule.split(table, MARCH, taken)
    assert set(days) == set(MARCH.partition_keys)
    assert days["2024-03-09"].schema == DOCTORS.schema
