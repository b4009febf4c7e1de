"""The job the ``drchrono_changes`` sensor's runs belong to, and people launch."""

import dagster as dg

from drchrono_assets.assets.ingest import GROUP as INGEST_GROUP

ingest_job = dg.define_asset_job(
    "drchrono_ingest",
    selection=dg.AssetSelection.groups(INGEST_GROUP),
    description="Every drchrono resource for the selected day(s), as one run per range.",
)
