"""Small tables and partitioned assets of the tests' own, written through the package's
hive datasets and IO manager on local disk."""

import os
import stat
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa

from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveParquetIOManager

FIRST, LAST = "2024-03-01", "2024-03-03"
#: The days of a snapshot written in one go.
SNAPSHOT_DAYS = [FIRST, "2024-03-02", LAST]
ROWS_SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def table(*ids: int) -> pa.Table:
    """Rows of ``ids``, each with a name."""
    return pa.Table.from_pylist([{"id": n, "name": f"n{n}"} for n in ids], ROWS_SCHEMA)


def mode(path: str | Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(os.stat(path).st_mode)


#: The days of the charges below, and their schema.
CHARGE_DAYS = dg.DailyPartitionsDefinition(start_date="2024-03-01", end_date="2024-03-10")
CHARGES_SCHEMA = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2))])


@dg.asset(partitions_def=CHARGE_DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def charges(context: dg.AssetExecutionContext) -> dict[str, pa.Table]:
    """0 to 2 charges of 10.10 a day, by the day of the month."""
    return {
        key: pa.Table.from_pylist(
            [{"id": n, "amount": Decimal("10.10")} for n in range(int(key[-2:]) % 3)],
            CHARGES_SCHEMA,
        )
        for key in context.partition_keys
    }


@dg.asset(
    partitions_def=CHARGE_DAYS,
    backfill_policy=dg.BackfillPolicy.single_run(),
    metadata={"dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn("total")])},
)
def charge_totals(context: dg.AssetExecutionContext, charges: pd.DataFrame) -> dict[str, pa.Table]:
    """Loads every upstream partition of the run as one DataFrame."""
    context.add_output_metadata({"loaded_rows": len(charges)})
    totals = charges.groupby("date")["amount"].sum()
    return {
        key: pa.table(
            {
                "total": pa.array(
                    [totals.get(pd.Timestamp(key).date(), Decimal(0))], CHARGES_SCHEMA[1].type
                )
            }
        )
        for key in context.partition_keys
    }


def run_charges(root: Path, first: str, last: str) -> dg.ExecuteInProcessResult:
    """One range run of both assets over ``first..last``, stored under ``root``."""
    return dg.materialize(
        [charges, charge_totals],
        resources={"io_manager": HiveParquetIOManager(data_root=str(root))},
        tags=DayWindow.from_partition_keys([first, last]).run_tags,
    )
