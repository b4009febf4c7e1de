"""Dagster assets: the ten drchrono resources (ingest), the billing report and aging, BI."""

from drchrono_assets.assets.ingest import build_resource_assets

__all__ = ["build_resource_assets"]
