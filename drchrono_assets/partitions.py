"""The one daily partitioning every drchrono asset shares (from the settings, read at import)."""

import dagster as dg

from drchrono_assets import settings

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=settings.start_date(), timezone=settings.timezone()
)
