"""Dagster assets: the ten drchrono resources (ingest)."""

from drchrono_assets.assets.ingest import resource_assets

__all__ = ["resource_assets"]
