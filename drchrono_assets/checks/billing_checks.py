"""Checks on the billing report, evaluated for every partition of the run.

A run of one day attaches each result to that day; a range run (a backfill, the daily
billing refresh) gives one result for the whole range with per-day details in metadata.
"""

from collections import defaultdict
from decimal import Decimal

import dagster as dg
import pyarrow as pa

from drchrono_assets import settings
from drchrono_assets.assets.billing_reports import billing_report
from drchrono_assets.billing.report import MONEY_FIELDS
from drchrono_assets.partitions import daily_partitions


def _sums_by_day(table: pa.Table) -> dict[tuple[str, str], Decimal]:
    sums = table.group_by("date").aggregate([(name, "sum") for name in MONEY_FIELDS])
    return {
        (str(row["date"]), name): row[f"{name}_sum"] or Decimal(0)
        for row in sums.to_pylist()
        for name in MONEY_FIELDS
    }


def _markdown(header: tuple[str, ...], rows: list[tuple]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


@dg.asset_check(
    asset=billing_report,
    partitions_def=daily_partitions,
    blocking=True,
    additional_ins={"transactions": dg.AssetIn("transactions")},
)
def billing_report_reconciles(
    billing_report: pa.Table, transactions: pa.Table
) -> dg.AssetCheckResult:
    """Every money total of the report equals the transactions' total of the day, exactly."""
    report, source = _sums_by_day(billing_report), _sums_by_day(transactions)
    mismatches = sorted(
        (key[0], key[1], report.get(key, Decimal(0)), source.get(key, Decimal(0)))
        for key in report.keys() | source.keys()
        if report.get(key, Decimal(0)) != source.get(key, Decimal(0))
    )
    return dg.AssetCheckResult(
        passed=not mismatches,
        description=(
            f"{len(mismatches)} money total(s) differ from the transactions' "
            f"(first: {mismatches[0][1]} on {mismatches[0][0]})"
            if mismatches
            else None
        ),
        metadata={
            "days_checked": len({day for day, _ in source.keys() | report.keys()}),
            "mismatches": len(mismatches),
            "details": _markdown(("day", "field", "report", "transactions"), mismatches[:50]),
        },
    )


@dg.asset_check(asset=billing_report, partitions_def=daily_partitions, blocking=True)
def billing_report_one_row_per_appointment(billing_report: pa.Table) -> dg.AssetCheckResult:
    """No appointment appears twice in a day's report."""
    counts = billing_report.group_by(["date", "appointment_id"]).aggregate([([], "count_all")])
    repeated = [
        (str(row["date"]), row["appointment_id"], row["count_all"])
        for row in counts.to_pylist()
        if row["count_all"] > 1
    ]
    return dg.AssetCheckResult(
        passed=not repeated,
        description=(
            f"{len(repeated)} appointment(s) appear more than once in a day "
            f"(first: {repeated[0][1]} on {repeated[0][0]})"
            if repeated
            else None
        ),
        metadata={
            "repeated_appointments": len(repeated),
            "details": _markdown(("day", "appointment", "rows"), repeated[:50]),
        },
    )


@dg.asset_check(asset=billing_report, partitions_def=daily_partitions)
def billing_report_orphans_and_unbilled(billing_report: pa.Table) -> dg.AssetCheckResult:
    """Orphan rows and unbilled visits per day; warns above the configured thresholds."""
    per_day: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in billing_report.select(["date", "is_orphan", "is_unbilled"]).to_pylist():
        per_day[str(row["date"])][0] += row["is_orphan"]
        per_day[str(row["date"])][1] += row["is_unbilled"]
    orphan_limit = settings.orphan_warning_threshold()
    unbilled_limit = settings.unbilled_warning_threshold()
    over = sorted(
        (day, orphans, unbilled)
        for day, (orphans, unbilled) in per_day.items()
        if orphans > orphan_limit or unbilled > unbilled_limit
    )
    return dg.AssetCheckResult(
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(
            f"{day}: {orphans} orphan row(s), {unbilled} unbilled visit(s)"
            for day, orphans, unbilled in over
        )
        + f" (warns above {orphan_limit} orphans or {unbilled_limit} unbilled visits a day)"
        if over
        else None,
        metadata={
            "orphan_rows": sum(orphans for orphans, _ in per_day.values()),
            "unbilled_visits": sum(unbilled for _, unbilled in per_day.values()),
            "thresholds": f"orphans > {orphan_limit} or unbilled > {unbilled_limit} per day",
            "days_over_threshold": _markdown(("day", "orphans", "unbilled"), over),
        },
    )


billing_checks = [
    billing_report_reconciles,
    billing_report_one_row_per_appointment,
    billing_report_orphans_and_unbilled,
]
