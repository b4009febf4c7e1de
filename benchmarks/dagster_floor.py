"""Dagster's own cost of a run, the yardstick for ``year_backfill.py``: assets on the same
daily partitions (one run per range, in process, as the package) that fetch and store
nothing. ``dagster asset materialize -f benchmarks/dagster_floor.py --select '*' ...``

``DAGSTER_FLOOR_ASSETS`` sets how many (10: the ingest assets; 13: every asset).
"""

import os

import dagster as dg

COUNT = int(os.environ.get("DAGSTER_FLOOR_ASSETS", "10"))
days = dg.DailyPartitionsDefinition(start_date=os.environ.get("DRCHRONO_START_DATE", "2024-01-01"))


class NoStorage(dg.ConfigurableIOManager):
    """Keeps nothing: what remains of a run is Dagster's own work."""

    def handle_output(self, context: dg.OutputContext, obj: None) -> None:
        return None

    def load_input(self, context: dg.InputContext) -> None:
        return None


def nothing_asset(number: int) -> dg.AssetsDefinition:
    @dg.asset(
        name=f"nothing_{number}",
        partitions_def=days,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="no_storage",
    )
    def nothing() -> None:
        """Does nothing, for every partition of the run."""

    return nothing


defs = dg.Definitions(
    assets=[nothing_asset(number) for number in range(COUNT)],
    resources={"no_storage": NoStorage()},
    executor=dg.in_process_executor,
)
