"""Dagster components: a drchrono practice, configured in YAML under ``defs/``."""

from drchrono_assets.components.drchrono_practice import (
    DrchronoPractice,
    DrchronoPracticeFromEnvironment,
)

__all__ = ["DrchronoPractice", "DrchronoPracticeFromEnvironment"]
