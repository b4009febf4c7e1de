"""The job the ``drchrono_changes`` sensor's runs belong to, and people launch."""

from typing import Any

import dagster as dg

from drchrono_assets.assets.ingest import GROUP as INGEST_GROUP
from drchrono_assets.practice_names import PracticeNames

INGEST_JOB = "drchrono_ingest"


# Any: define_asset_job's type, UnresolvedAssetJobDefinition, is not exported by Dagster.
def build_ingest_job(names: PracticeNames) -> Any:
    """Every drchrono resource of the practice for the selected day(s)."""
    return dg.define_asset_job(
        names(INGEST_JOB),
        selection=dg.AssetSelection.groups(names(INGEST_GROUP)),
        description="Every drchrono resource for the selected day(s), as one run per range.",
    )
