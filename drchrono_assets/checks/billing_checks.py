"""Checks on the billing report: a result for the run's days, and each day's own verdict.

Each check reports twice, with public Dagster API only:

* one ``dg.AssetCheckResult`` for all the days of the run: the check's status in the UI's
  Checks tab (it fails when any day fails), its ``days`` table listing each day's verdict;
* one ``dg.AssetCheckEvaluation`` per day of a partitioned run, with that day's verdict,
  severity and figures: the check's history lists each day's own result.

The checks are not partitioned, on purpose. In Dagster 1.13.27 a partitioned check run over
a range (a single-run backfill, ``make demo``, the sensor's runs) gets one result attached
to no day, and the Checks tab lists every day of the range as Skipped. A day's evaluation
counts there only if it names that day's materialization, in a type Dagster does not export
(``AssetCheckEvaluationTargetMaterializationData``). Unpartitioned, the run's result is the
check's status, and the days' evaluations fill in the rows Dagster plans for each day of
a run (planned events carry the run's days even for an unpartitioned check), which would
otherwise read as Skipped.

An unpartitioned check would load every partition of its asset as an input, so the checks
read the days of their run themselves.
"""

# No ``from __future__ import annotations``: Dagster reads the ``context`` annotation of a
# check function as a type, not as a string.
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import dagster as dg
import pyarrow as pa

from drchrono_assets.billing.report import MONEY_FIELDS, REPORT_SCHEMA
from drchrono_assets.catalog.endpoints import TRANSACTIONS as TRANSACTIONS_SPEC
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.practice_names import PracticeNames

DETAIL_ROWS = 50  # rows of a details table; the counts beside it are complete

CheckEvents = Iterator[dg.AssetCheckResult | dg.AssetCheckEvaluation]


@dataclass(frozen=True)
class CheckOutcome:
    """A check's result for all the days it checked, and each day's own result."""

    result: dg.AssetCheckResult
    by_day: dict[str, dg.AssetCheckResult]


def is_partitioned_run(context: dg.AssetCheckExecutionContext) -> bool:
    """Whether the run has a day or a range of days (a run of the checks alone has none)."""
    return context.has_partition_key or context.has_partition_key_range


def checked_days(
    context: dg.AssetCheckExecutionContext, parquet_io_manager: HiveParquetIOManager
) -> list[str]:
    """The run's days (its partition or range). A run of the checks alone, which Dagster
    launches with no partition (the UI's Execute), checks every day the report holds."""
    if is_partitioned_run(context):
        return list(context.partition_keys)
    return parquet_io_manager.dataset(context.check_specs[0].asset_key).partition_keys()


def _read(
    parquet_io_manager: HiveParquetIOManager,
    key: dg.AssetKey,
    days: list[str],
    schema: pa.Schema,
) -> pa.Table:
    """The stored days of ``key`` (files of ``schema``) as one table with their ``date``."""
    dataset = parquet_io_manager.dataset(key)
    return dataset.read(days) if days else dataset.empty_table(schema)


def _report(
    context: dg.AssetCheckExecutionContext, parquet_io_manager: HiveParquetIOManager
) -> tuple[list[str], pa.Table]:
    """The days the check checks, and those days of the report it is the check of."""
    days = checked_days(context, parquet_io_manager)
    key = context.check_specs[0].asset_key
    return days, _read(parquet_io_manager, key, days, REPORT_SCHEMA)


def report_events(context: dg.AssetCheckExecutionContext, outcome: CheckOutcome) -> CheckEvents:
    """The run's result, then each day's as an evaluation of that day.

    The run's comes first: the UI shows a check's latest row, and a day's evaluation fills
    in the row Dagster planned for that day when the run was launched, so the run's row,
    added when its result comes, stays the latest. A run without partition planned no day's
    row; there the run's result alone is reported (its ``days`` table has every day)."""
    yield outcome.result
    if not is_partitioned_run(context):
        return
    (spec,) = context.check_specs
    for day, result in outcome.by_day.items():
        # Not blocking: the run's result alone blocks what follows the report.
        yield dg.AssetCheckEvaluation(
            asset_key=spec.asset_key,
            check_name=spec.name,
            passed=result.passed,
            metadata=result.metadata,
            severity=result.severity,
            description=result.description,
            partition=day,
        )


def _markdown(header: tuple[str, ...], rows: Iterable[tuple]) -> dg.MetadataValue:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return dg.MetadataValue.md("\n".join(lines))


def _days_table(by_day: dict[str, dg.AssetCheckResult], *figures: str) -> dg.MetadataValue:
    """Each day's verdict, and the ``figures`` of its metadata."""
    return _markdown(
        ("day", "verdict", *figures),
        (
            (
                day,
                "passed" if result.passed else "failed",
                *(result.metadata[f].value for f in figures),
            )
            for day, result in by_day.items()
        ),
    )


def _grouped(days: Sequence[str], rows: Iterable[tuple]) -> dict[str, list[tuple]]:
    """``rows`` (each starting with its day) by day, every one of ``days`` included."""
    grouped: dict[str, list[tuple]] = {day: [] for day in days}
    for row in rows:
        grouped.setdefault(row[0], []).append(row)
    return grouped


def _per_day(
    days: Sequence[str],
    rows: Iterable[tuple],
    day_result: Callable[[list[tuple]], dg.AssetCheckResult],
) -> dict[str, dg.AssetCheckResult]:
    return {day: day_result(found) for day, found in _grouped(days, rows).items()}


def _sums_by_day(table: pa.Table) -> dict[tuple[str, str], Decimal]:
    sums = table.group_by("date").aggregate([(name, "sum") for name in MONEY_FIELDS])
    return {
        (str(row["date"]), name): row[f"{name}_sum"] or Decimal(0)
        for row in sums.to_pylist()
        for name in MONEY_FIELDS
    }


def _findings(
    days: Sequence[str],
    rows: list[tuple],
    header: tuple[str, ...],
    count: str,
    about_day: Callable[[list[tuple]], str],
    about_run: str,
) -> CheckOutcome:
    """A check that fails on any finding (``rows``, each starting with its day): each day's
    result says ``about_day`` of its findings; the run's, ``about_run`` and the first one."""

    def day_result(found: list[tuple]) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=not found,
            description=about_day(found) if found else None,
            metadata={count: len(found), "details": _markdown(header, found[:DETAIL_ROWS])},
        )

    by_day = _per_day(days, rows, day_result)
    failed = len({row[0] for row in rows})
    result = dg.AssetCheckResult(
        passed=not rows,
        description=(
            f"{len(rows)} {about_run} on {failed} of {len(days)} day(s) "
            f"(first: {rows[0][1]} on {rows[0][0]})"
            if rows
            else None
        ),
        metadata={
            "days_checked": len(days),
            count: len(rows),
            "days": _days_table(by_day, count),
            "details": _markdown(header, rows[:DETAIL_ROWS]),
        },
    )
    return CheckOutcome(result, by_day)


def reconciliation(days: Sequence[str], report: pa.Table, transactions: pa.Table) -> CheckOutcome:
    """Each day's money totals of ``report`` against those of ``transactions``."""
    ours, theirs = _sums_by_day(report), _sums_by_day(transactions)
    mismatches = sorted(
        (key[0], key[1], ours.get(key, Decimal(0)), theirs.get(key, Decimal(0)))
        for key in ours.keys() | theirs.keys()
        if ours.get(key, Decimal(0)) != theirs.get(key, Decimal(0))
    )
    return _findings(
        days,
        mismatches,
        ("day", "field", "report", "transactions"),
        "mismatches",
        lambda found: f"{', '.join(row[1] for row in found)} differ from the transactions' total",
        "money total(s) differ from the transactions'",
    )


def repeated_appointments(days: Sequence[str], report: pa.Table) -> CheckOutcome:
    """Appointments that appear more than once in a day of ``report``."""
    counts = report.group_by(["date", "appointment_id"]).aggregate([([], "count_all")])
    repeated = sorted(
        (str(row["date"]), row["appointment_id"], row["count_all"])
        for row in counts.to_pylist()
        if row["count_all"] > 1
    )
    return _findings(
        days,
        repeated,
        ("day", "appointment", "rows"),
        "repeated_appointments",
        lambda found: f"{len(found)} appointment(s) appear more than once",
        "appointment(s) appear more than once in a day",
    )


def orphans_and_unbilled(
    days: Sequence[str], report: pa.Table, orphan_limit: int, unbilled_limit: int
) -> CheckOutcome:
    """Orphan rows and unbilled visits of each day of ``report`` against their limits."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in report.select(["date", "is_orphan", "is_unbilled"]).to_pylist():
        counts[str(row["date"])][0] += row["is_orphan"]
        counts[str(row["date"])][1] += row["is_unbilled"]
    thresholds = f"orphans > {orphan_limit} or unbilled > {unbilled_limit} per day"
    rows = [(day, *figures) for day, figures in counts.items()]

    def day_result(found: list[tuple]) -> dg.AssetCheckResult:
        orphans, unbilled = found[0][1:] if found else (0, 0)
        over = orphans > orphan_limit or unbilled > unbilled_limit
        return dg.AssetCheckResult(
            passed=not over,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"{orphans} orphan row(s), {unbilled} unbilled visit(s)" if over else None,
            metadata={
                "orphan_rows": orphans,
                "unbilled_visits": unbilled,
                "thresholds": thresholds,
            },
        )

    by_day = _per_day(days, rows, day_result)
    over = sorted((day, result) for day, result in by_day.items() if not result.passed)
    result = dg.AssetCheckResult(
        passed=not over,
        severity=dg.AssetCheckSeverity.WARN,
        description="; ".join(f"{day}: {result.description}" for day, result in over)
        + f" (warns above {orphan_limit} orphans or {unbilled_limit} unbilled visits a day)"
        if over
        else None,
        metadata={
            "days_checked": len(days),
            "orphan_rows": sum(orphans for orphans, _ in counts.values()),
            "unbilled_visits": sum(unbilled for _, unbilled in counts.values()),
            "thresholds": thresholds,
            "days": _days_table(by_day, "orphan_rows", "unbilled_visits"),
        },
    )
    return CheckOutcome(result, by_day)


def build_billing_checks(
    billing_report: dg.AssetsDefinition,
    names: PracticeNames,
    orphan_limit: int,
    unbilled_limit: int,
) -> list[dg.AssetChecksDefinition]:
    """The checks of ``billing_report``; the orphan and unbilled one warns above the limits."""
    transactions = names.key(TRANSACTIONS_SPEC.name)
    needs = {names.io_manager}

    @dg.asset_check(
        asset=billing_report,
        blocking=True,
        additional_deps=[transactions],
        required_resource_keys=needs,
    )
    def billing_report_reconciles(context: dg.AssetCheckExecutionContext) -> CheckEvents:
        """Every money total of each day of the report equals the transactions' total of the
        day, exactly. A result for the run's days (its ``days`` table: each day's verdict),
        and one for each day."""
        storage = names.storage(context)
        days, report = _report(context, storage)
        stored = _read(storage, transactions, days, TRANSACTIONS_SPEC.schema)
        yield from report_events(context, reconciliation(days, report, stored))

    @dg.asset_check(asset=billing_report, blocking=True, required_resource_keys=needs)
    def billing_report_one_row_per_appointment(
        context: dg.AssetCheckExecutionContext,
    ) -> CheckEvents:
        """No appointment appears twice in a day's report. A result for the run's days (its
        ``days`` table: each day's verdict), and one for each day."""
        days, report = _report(context, names.storage(context))
        yield from report_events(context, repeated_appointments(days, report))

    @dg.asset_check(asset=billing_report, required_resource_keys=needs)
    def billing_report_orphans_and_unbilled(context: dg.AssetCheckExecutionContext) -> CheckEvents:
        """Orphan rows and unbilled visits per day; warns above the configured thresholds. A
        result for the run's days (its ``days`` table: each day's counts and verdict), and
        one for each day."""
        days, report = _report(context, names.storage(context))
        outcome = orphans_and_unbilled(days, report, orphan_limit, unbilled_limit)
        yield from report_events(context, outcome)

    return [
        billing_report_reconciles,
        billing_report_one_row_per_appointment,
        billing_report_orphans_and_unbilled,
    ]
