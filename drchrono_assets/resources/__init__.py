"""Dagster resources: the drchrono API resource, which owns a run's ``DrchronoClient``."""

from drchrono_assets.resources.drchrono_api import DrchronoApiResource

__all__ = ["DrchronoApiResource"]
