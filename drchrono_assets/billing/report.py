"""The billing report: each visit's line items summed, orphans and unbilled visits kept.

Join keys differ in type: a transaction's ``appointment`` is an integer, an appointment's
``id`` a string that is usually numeric. Both become a canonical string (digits without
leading zeros; other ids unchanged), so ``"0123"`` meets ``123`` and ``"8812_20240305"``
never meets a number by accident. A transaction whose appointment matches no id of its day
is matched by what the reference documents beside it when the appointment's id is not a
number (a recurring visit's): the one such appointment of that day with the same doctor,
start time (the transaction's ``date``) and office. Nothing is dropped: a transaction that
finds no appointment is an orphan row; a visit that happened (Complete, Arrived,
In Session) without any transaction is an unbilled row with zero amounts.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from drchrono_assets.catalog.endpoints import TRANSACTIONS
from drchrono_assets.catalog.fields import column, list_of

MONEY_FIELDS = TRANSACTIONS.money_fields  # summed per visit
REPORT_MONEY = pa.decimal128(18, 2)
VISIT_STATUSES = ("Complete", "Arrived", "In Session")

REPORT_SCHEMA = pa.schema(
    [
        column("appointment_id", pa.string(), "Appointment id; for orphans the transactions' id"),
        column("scheduled_time", pa.timestamp("us"), "Visit start (orphans: the line items')"),
        column("doctor_id", pa.int64(), "The visit's doctor (orphans: the line items' doctor)"),
        column(
            "doctor_name",
            pa.string(),
            "First and last name from that day's doctors (else the line items' doctor_name)",
        ),
        column("office_id", pa.int64(), "The visit's office (orphans: the line items' location)"),
        column("patient_id", pa.int64(), "Patient id only: no patient details in the report"),
        column("status", pa.string(), "Appointment status (null for orphans)"),
        column("line_items", pa.int64(), "Number of transactions (line items)"),
        column("procedure_codes", list_of(pa.string()), "Procedure codes of the line items"),
        *[column(name, REPORT_MONEY, f"Sum of {name} (exact decimal)") for name in MONEY_FIELDS],
        column("denied_line_items", pa.int64(), "Line items with the denied flag set"),
        column("billing_statuses", list_of(pa.string()), "Distinct billing statuses"),
        column("is_orphan", pa.bool_(), "Transactions whose appointment is not in that day's data"),
        column("is_unbilled", pa.bool_(), "A visit that happened with no transaction at all"),
        column("insurance_inconsistent", pa.bool_(), "ins_total != ins1 + ins2 + ins3 paid"),
        column("paid_inconsistent", pa.bool_(), "paid_total != ins_total + pt_paid"),
        column(
            "balance_inconsistent",
            pa.bool_(),
            "balance_total != billed - adjustment - paid_total, or != balance_ins + balance_pt",
        ),
    ]
)

_KEY = (
    "CASE WHEN regexp_full_match({0}, '[0-9]+') "
    "THEN CAST(CAST({0} AS HUGEINT) AS VARCHAR) ELSE {0} END"
)
_SUMS = ",\n        ".join(f"sum({name}) AS {name}" for name in MONEY_FIELDS)
_AMOUNTS = ",\n    ".join(f"coalesce(l.{name}, 0) AS {name}" for name in MONEY_FIELDS)

REPORT_SQL = f"""
WITH visits AS (
    SELECT *, {_KEY.format("id")} AS appointment_key FROM appointments
),
slots AS (
    -- Only appointments a number cannot name: a numeric one would have matched exactly.
    SELECT date, doctor_id, scheduled_time, office_id, min(appointment_key) AS appointment_key
    FROM visits
    WHERE NOT regexp_full_match(id, '[0-9]+')
    GROUP BY ALL
    HAVING count(*) = 1
),
keyed AS (
    SELECT t.*, coalesce(exact.appointment_key, s.appointment_key, CAST(t.appointment AS VARCHAR))
        AS appointment_key
    FROM transactions t
    LEFT JOIN (SELECT DISTINCT date, appointment_key FROM visits) exact
        ON exact.date = t.date AND exact.appointment_key = CAST(t.appointment AS VARCHAR)
    LEFT JOIN slots s
        ON s.date = t.date AND s.doctor_id = t.doctor AND s.scheduled_time = t.service_time
        AND s.office_id = t.location
),
lines AS (
    SELECT
        date,
        appointment_key,
        count(*) AS line_items,
        list_sort(list(code)) AS procedure_codes,
        {_SUMS},
        count(*) FILTER (WHERE denied_flag) AS denied_line_items,
        list_sort(list_distinct(list(billing_status))) AS billing_statuses,
        min(doctor) AS doctor,
        min(doctor_name) AS doctor_name,
        min(location) AS location,
        min(service_time) AS service_time
    FROM keyed
    GROUP BY date, appointment_key
),
names AS (
    SELECT DISTINCT date, id AS doctor_id, concat_ws(' ', first_name, last_name) AS doctor_name
    FROM doctors
),
report AS (
SELECT
    coalesce(v.date, l.date) AS date,
    coalesce(v.id, l.appointment_key) AS appointment_id,
    coalesce(v.scheduled_time, l.service_time) AS scheduled_time,
    coalesce(v.doctor_id, l.doctor) AS doctor_id,
    coalesce(n.doctor_name, l.doctor_name) AS doctor_name,
    coalesce(v.office_id, l.location) AS office_id,
    v.patient_id,
    v.status,
    coalesce(l.line_items, 0) AS line_items,
    coalesce(l.procedure_codes, []) AS procedure_codes,
    {_AMOUNTS},
    coalesce(l.denied_line_items, 0) AS denied_line_items,
    coalesce(l.billing_statuses, []) AS billing_statuses,
    v.id IS NULL AS is_orphan,
    l.date IS NULL AS is_unbilled
FROM lines l
FULL OUTER JOIN visits v ON v.date = l.date AND v.appointment_key = l.appointment_key
LEFT JOIN names n
    ON n.date = coalesce(v.date, l.date) AND n.doctor_id = coalesce(v.doctor_id, l.doctor)
WHERE l.date IS NOT NULL
   OR (v.status IN {VISIT_STATUSES!r} AND v.patient IS NOT NULL)
)
SELECT * EXCLUDE (date), date,
    ins_total <> ins1_paid + ins2_paid + ins3_paid AS insurance_inconsistent,
    paid_total <> ins_total + pt_paid AS paid_inconsistent,
    balance_total <> billed - adjustment - paid_total
        OR balance_total <> balance_ins + balance_pt AS balance_inconsistent
FROM report
ORDER BY date, appointment_id
"""


def build_billing_report(
    appointments: pa.Table, transactions: pa.Table, doctors: pa.Table
) -> pa.Table:
    """The report rows of every day present in the inputs, with a ``date`` column."""
    with duckdb.connect() as db:
        for name, table in (
            ("appointments", appointments),
            ("transactions", transactions),
            ("doctors", doctors),
        ):
            db.register(name, table)
        result = db.sql(REPORT_SQL).to_arrow_table()
    schema = REPORT_SCHEMA.append(pa.field("date", pa.date32()))
    return result.select(schema.names).cast(schema)


def _money(value: object) -> str:
    return f"{value or 0:,.2f}"


#: The sums of the summary, in its columns' order.
SUMMED = ("billed", "paid_total", "balance_total", "denied_line_items", "line_items")


def doctor_summary_markdown(day: pa.Table) -> str:
    """A Markdown table of one day's billing per doctor, with a totals line."""
    # Arrow, not DuckDB: a connection per day costs more than the sums (a year's backfill
    # summarizes 365 days).
    named = pa.table(
        {
            "doctor": pc.fill_null(day["doctor_name"], "(unknown)"),
            "visits": pc.invert(day["is_orphan"]).cast(pa.int64()),
            **{name: day[name] for name in SUMMED},
        }
    )
    aggregates = [(name, "sum") for name in ("visits", *SUMMED)]
    per_doctor = named.group_by("doctor").aggregate(aggregates).sort_by("doctor")
    by_doctor = [
        (row["doctor"], *(row[f"{name}_sum"] for name in ("visits", *SUMMED)))
        for row in per_doctor.to_pylist()
    ]
    total = (None, *(pc.sum(named[name]).as_py() for name in ("visits", *SUMMED)))
    rows = [*by_doctor, total]
    lines = [
        "| Doctor | Visits | Billed | Paid | Balance | Denial rate |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for index, (name, visits, billed, paid, balance, denied, items) in enumerate(rows):
        label = "**Total**" if index == len(rows) - 1 else name
        rate = f"{denied / items:.1%}" if items else "-"
        lines.append(
            f"| {label} | {visits or 0} | {_money(billed)} | {_money(paid)} "
            f"| {_money(balance)} | {rate} |"
        )
    return "\n".join(lines)
