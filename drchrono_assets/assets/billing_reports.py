"""Billing assets: the daily billing report and accounts receivable aging."""

from typing import NamedTuple

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc

from drchrono_assets.billing.aging import AGING_SCHEMA, build_ar_aging
from drchrono_assets.billing.report import (
    REPORT_SCHEMA,
    build_billing_report,
    doctor_summary_markdown,
)
from drchrono_assets.catalog import BILLING_INPUTS
from drchrono_assets.catalog.fields import COLUMN_SCHEMA, dagster_table_schema
from drchrono_assets.day_window import DayWindow
from drchrono_assets.practice_names import PracticeNames

GROUP = "billing"
# Any partition whose appointments, transactions or doctors were re-materialized is
# rebuilt, however old: late payments land on visits months back. (``eager()`` would only
# look at the latest day.) A partition found missing while its inputs are there is built
# once: a backfill that ended before automation first saw the asset (a practice just
# added, the daemon stopped) updated nothing automation can still see.
FOLLOWS_UPSTREAM = (
    (
        dg.AutomationCondition.any_deps_updated().since_last_handled()
        | (
            dg.AutomationCondition.missing() & ~dg.AutomationCondition.any_deps_missing()
        ).newly_true()
    )
    & ~dg.AutomationCondition.any_deps_missing()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follows upstream partitions")


class BillingAssets(NamedTuple):
    """A practice's billing assets."""

    billing_report: dg.AssetsDefinition
    ar_aging: dg.AssetsDefinition


def build_billing_assets(
    partitions: dg.DailyPartitionsDefinition, names: PracticeNames
) -> BillingAssets:
    """``billing_report``, partitioned by ``partitions`` like the ingest assets it joins, and
    ``ar_aging`` over every day of it."""

    @dg.asset(
        key=names.key("billing_report"),
        ins={name: dg.AssetIn(names.key(name)) for name in BILLING_INPUTS},
        group_name=names(GROUP),
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key=names.io_manager,
        kinds={"duckdb", "parquet"},
        metadata={COLUMN_SCHEMA: dagster_table_schema(REPORT_SCHEMA)},
        automation_condition=FOLLOWS_UPSTREAM,
    )
    def billing_report(
        context: dg.AssetExecutionContext,
        appointments: pa.Table,
        transactions: pa.Table,
        doctors: pa.Table,
    ) -> dict[str, pa.Table]:
        """What was billed, paid and is still owed, per visit scheduled on the day.

        One row per appointment with transactions: line items, procedure codes and the sums of
        every money field (exact decimals). Transactions whose appointment is not in that day's
        appointments are kept as orphan rows; visits that happened (Complete, Arrived, In Session)
        with no transaction are kept as unbilled rows with zero amounts. Rows whose totals do not
        add up are flagged, not corrected. Patients appear by id only.

        Ready-made BI questions over it, with their SQL for ``drchrono.duckdb``, are in the
        ``bi_duckdb`` asset's metadata (``bi_questions``).
        """
        window = DayWindow.from_partition_keys(list(context.partition_keys))
        report = build_billing_report(appointments, transactions, doctors)
        days = window.split(report, "date")
        for key, day in days.items():
            context.add_asset_metadata(
                {
                    "billing_by_doctor": dg.MetadataValue.md(doctor_summary_markdown(day)),
                    "visits": pc.sum(pc.invert(day["is_orphan"])).as_py() or 0,
                    "unbilled_visits": pc.sum(day["is_unbilled"]).as_py() or 0,
                    "orphan_rows": pc.sum(day["is_orphan"]).as_py() or 0,
                    **{
                        f"total_{name}": dg.MetadataValue.text(
                            f"{pc.sum(day[name]).as_py() or 0:.2f}"
                        )
                        for name in ("billed", "paid_total", "balance_total")
                    },
                },
                partition_key=key,
            )
        return {key: day.drop_columns(["date"]) for key, day in days.items()}

    @dg.asset(
        key=names.key("ar_aging"),
        group_name=names(GROUP),
        deps=[billing_report],
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key=names.io_manager,
        required_resource_keys={names.io_manager},
        kinds={"duckdb", "parquet"},
        metadata={COLUMN_SCHEMA: dagster_table_schema(AGING_SCHEMA)},
        automation_condition=dg.AutomationCondition.eager(),
    )
    def ar_aging(context: dg.AssetExecutionContext) -> pa.Table:
        """Outstanding balance per doctor and payer side (insurance / patient) by age bucket.

        Buckets of 0-30, 31-60, 61-90, 91-120 and over 120 days, aged as of the latest
        billing_report partition. Rebuilt from every billing_report partition that exists.
        """
        reports = names.storage(context).dataset(billing_report.key)
        keys = reports.partition_keys()
        report = reports.read(keys) if keys else reports.empty_table(REPORT_SCHEMA)
        context.add_output_metadata(
            {
                "partitions_read": len(keys),
                "first_partition": keys[0] if keys else "",
                "as_of": keys[-1] if keys else "",
            }
        )
        return build_ar_aging(report)

    return BillingAssets(billing_report, ar_aging)
