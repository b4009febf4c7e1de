"""Accounts receivable aging: outstanding balances by doctor, payer side and age bucket."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from drchrono_assets.billing.report import REPORT_MONEY
from drchrono_assets.catalog.fields import column

# (column, first day, last day); age = as-of day - visit day.
BUCKETS = (
    ("days_0_30", 0, 30),
    ("days_31_60", 31, 60),
    ("days_61_90", 61, 90),
    ("days_91_120", 91, 120),
    ("days_over_120", 121, None),
)
PAYERS = {"insurance": "balance_ins", "patient": "balance_pt"}

AGING_SCHEMA = pa.schema(
    [
        column("as_of", pa.date32(), "The latest billing_report partition read"),
        column("doctor_id", pa.int64(), "The doctor whose visits' balances the row sums"),
        column("doctor_name", pa.string(), "The doctor's name, as in billing_report"),
        column("payer", pa.string(), "insurance or patient"),
        *[
            column(name, REPORT_MONEY, f"Balance of visits {first}-{last or ''} days old")
            for name, first, last in BUCKETS
        ],
        column("total", REPORT_MONEY, "Outstanding balance, all ages"),
    ]
)


def _bucket_sum(name: str, first: int, last: int | None) -> str:
    upper = f" AND age <= {last}" if last is not None else ""
    return f"coalesce(sum(balance) FILTER (WHERE age >= {first}{upper}), 0) AS {name}"


_SIDES = " UNION ALL ".join(
    f"SELECT date, doctor_id, doctor_name, '{payer}' AS payer, {field} AS balance FROM report"
    for payer, field in PAYERS.items()
)
AGING_SQL = f"""
WITH sides AS ({_SIDES}),
aged AS (SELECT *, (SELECT max(date) FROM report) AS as_of FROM sides)
SELECT
    as_of,
    doctor_id,
    max(doctor_name) AS doctor_name,
    payer,
    {", ".join(_bucket_sum(*bucket) for bucket in BUCKETS)},
    coalesce(sum(balance), 0) AS total
FROM (SELECT *, as_of - date AS age FROM aged)
GROUP BY as_of, doctor_id, payer
ORDER BY doctor_id, payer
"""


def build_ar_aging(report: pa.Table) -> pa.Table:
    """Aging of ``report`` (billing report rows with their ``date``) as of its latest day."""
    with duckdb.connect() as db:
        db.register("report", report)
        return db.sql(AGING_SQL).to_arrow_table().cast(AGING_SCHEMA)
