"""Everything about talking to drchrono, without Dagster: the client, its OAuth tokens, the
shared token store and request budget."""

from drchrono_assets.api.client import ClientSettings, DrchronoClient, ReminderConflictError

__all__ = ["ClientSettings", "DrchronoClient", "ReminderConflictError"]
