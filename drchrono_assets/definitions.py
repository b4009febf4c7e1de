"""The Dagster code location: ``dagster dev -w workspace.yaml`` and ``dg dev`` load ``defs``.

Each practice is a component instance under ``defs/`` (a ``defs.yaml`` each). Building them
is where settings are read, every one at once, so a bad one stops the load (and ``dagster
definitions validate``, ``dg check defs``) with its variable or attribute named, rather than
failing the check or step that would use it later. They are passed down from there.
"""

from pathlib import Path

import dagster as dg

from drchrono_assets.api.client_settings import tuning_from_env
from drchrono_assets.settings import PracticeSettings

# The DRCHRONO_* variables first, so a bad one is refused in its own sentence, not inside
# the stack trace of the component that reads it.
PracticeSettings.from_env()
tuning_from_env()
defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
