"""The Dagster code location: ``dagster dev -w workspace.yaml`` loads ``defs`` from here.

The one place settings are read: every ``DRCHRONO_*`` variable now, so a bad one stops the
load (and ``dagster definitions validate``) with its variable named, rather than failing the
check or step that would use it later. They are passed down from here.
"""

from drchrono_assets.practice import PracticeDefinitions
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.settings import PracticeSettings

practice = PracticeSettings.from_env()
practice_definitions = PracticeDefinitions.build(practice)
defs = practice_definitions.definitions(DrchronoApiResource.from_env(data_root=practice.data_root))
