"""Dagster resources: the drchrono API client and what it needs (tokens, rate budget)."""

from drchrono_assets.resources.drchrono_api import DrchronoApiResource, ReminderConflictError

__all__ = ["DrchronoApiResource", "ReminderConflictError"]
