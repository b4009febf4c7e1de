"""Everything about talking to drchrono, without Dagster: the client, its OAuth tokens, the
shared token store and request budget."""

from drchrono_assets.api.client import DrchronoClient
from drchrono_assets.api.client_settings import ClientSettings
from drchrono_assets.api.writes import ReminderConflictError

__all__ = ["ClientSettings", "DrchronoClient", "ReminderConflictError"]
