"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here."""

import dagster as dg

from drchrono_assets import settings
from drchrono_assets.assets import resource_assets
from drchrono_assets.assets.ingest import GROUP
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource

ingest_job = dg.define_asset_job(
    "drchrono_ingest",
    selection=dg.AssetSelection.groups(GROUP),
    description="Every drchrono resource for the selected day(s), as one run per range.",
)

defs = dg.Definitions(
    assets=resource_assets,
    jobs=[ingest_job],
    resources={
        "drchrono": DrchronoApiResource.from_env(),
        "parquet_io_manager": HiveParquetIOManager(data_root=settings.data_root()),
    },
)
