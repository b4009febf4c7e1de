"""Accounts receivable aging over the billing_report partitions that exist."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from drchrono_assets.billing.aging import AGING_SCHEMA
from drchrono_assets.billing.report import REPORT_SCHEMA
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets_tests.support.definitions import ar_aging, billing_report

AS_OF = dt.date(2024, 6, 30)
# age in days -> the bucket it must land in
BOUNDARIES = {
    0: "days_0_30",
    30: "days_0_30",
    31: "days_31_60",
    60: "days_31_60",
    61: "days_61_90",
    90: "days_61_90",
    91: "days_91_120",
    120: "days_91_120",
    121: "days_over_120",
    400: "days_over_120",
}


def write_report_day(io: HiveParquetIOManager, day: dt.date, rows: list[dict]) -> None:
    blank = dict.fromkeys(REPORT_SCHEMA.names)
    table = pa.Table.from_pylist([{**blank, **row} for row in rows], REPORT_SCHEMA)
    io.dataset(billing_report.key).write({day.isoformat(): table})


def run_aging(io: HiveParquetIOManager) -> tuple[list[dict], dict]:
    result = dg.materialize([ar_aging], resources={"parquet_io_manager": io})
    (event,) = result.get_asset_materialization_events()
    table = pq.read_table(io.dataset(ar_aging.key).file().path)
    assert table.schema.equals(AGING_SCHEMA, check_metadata=True)
    return table.to_pylist(), {k: v.value for k, v in event.materialization.metadata.items()}


def test_each_age_lands_in_its_bucket_at_the_boundaries(tmp_path) -> None:
    io = HiveParquetIOManager(data_root=str(tmp_path))
    for age in BOUNDARIES:
        write_report_day(
            io,
            AS_OF - dt.timedelta(days=age),
            [
                {
                    "appointment_id": str(age),
                    "doctor_id": 101,
                    "doctor_name": "Ada Testwell",
                    "balance_ins": Decimal(age) + Decimal("0.01"),
                    "balance_pt": Decimal("1.10"),
                }
            ],
        )
    rows, metadata = run_aging(io)
    assert metadata["partitions_read"] == len(BOUNDARIES)
    assert metadata["as_of"] == AS_OF.isoformat()
    insurance = next(r for r in rows if r["payer"] == "insurance")
    patient = next(r for r in rows if r["payer"] == "patient")
    expected = dict.fromkeys(
        ["days_0_30", "days_31_60", "days_61_90", "days_91_120", "days_over_120"], Decimal(0)
    )
    for age, bucket in BOUNDARIES.items():
        expected[bucket] += Decimal(age) + Decimal("0.01")
    assert {bucket: insurance[bucket] for bucket in expected} == expected
    assert insurance["total"] == sum(expected.values())
    assert patient["days_0_30"] == Decimal("2.20") and patient["days_over_120"] == Decimal("2.20")
    assert patient["total"] == Decimal("1.10") * len(BOUNDARIES)
    assert insurance["as_of"] == AS_OF and insurance["doctor_name"] == "Ada Testwell"


def test_reads_only_the_partitions_that_exist(tmp_path) -> None:
    io = HiveParquetIOManager(data_root=str(tmp_path))
    rows, metadata = run_aging(io)
    assert rows == [] and metadata["partitions_read"] == 0
    write_report_day(
        io,
        dt.date(2024, 3, 5),
        [
            {
                "appointment_id": "1",
                "doctor_id": 7,
                "balance_ins": Decimal("5.00"),
                "balance_pt": Decimal("0.00"),
            }
        ],
    )
    write_report_day(io, dt.date(2024, 3, 7), [])
    rows, metadata = run_aging(io)
    assert metadata["partitions_read"] == 2 and metadata["as_of"] == "2024-03-07"
    assert {(r["doctor_id"], r["payer"]): r["days_0_30"] for r in rows} == {
        (7, "insurance"): Decimal("5.00"),
        (7, "patient"): Decimal("0.00"),
    }
