"""How a practice's definitions are named. Dagster wants asset keys, and the names of jobs,
sensors, resources and groups, unique in a code location: with many practices in one, each
practice's carry its name as a prefix. The practice configured by ``DRCHRONO_*`` variables
alone has none, so its keys and names stay what they were before practices had names."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import dagster as dg

from drchrono_assets.errors import ConfigurationError
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource

# A Dagster name part: a key's first element, and the start of names ("clinic_a__...").
PRACTICE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
API_POOL = "drchrono_api"


def name_problem(value: str | None) -> str | None:
    """What to do about a practice or application name Dagster cannot carry (a double
    underscore joins a key's parts in its names), or None when it is one."""
    if value is None or (PRACTICE_NAME.fullmatch(value) and "__" not in value):
        return None
    return (
        "use lowercase letters, digits and single underscores, starting with a letter, at most "
        "40 characters (e.g. clinic_a)"
    )


@dataclasses.dataclass(frozen=True)
class PracticeNames:
    """The names of one practice's definitions; ``practice`` None: unprefixed."""

    practice: str | None = None
    # The API application the practice's requests count against: its steps share one pool.
    application: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("practice", self.practice), ("application", self.application)):
            problem = name_problem(value)
            if problem:
                raise ConfigurationError(f"{label} name {value!r} is not a name: {problem}")

    def key(self, name: str) -> dg.AssetKey:
        """The asset key of ``name`` (``appointments``, ``billing_report``, ...)."""
        return dg.AssetKey([self.practice, name] if self.practice else [name])

    def __call__(self, name: str) -> str:
        """The Dagster name of a job, sensor, resource or group of this practice."""
        return f"{self.practice}__{name}" if self.practice else name

    @property
    def api_resource(self) -> str:
        """The key of the practice's ``DrchronoApiResource``."""
        return self("drchrono")

    @property
    def io_manager(self) -> str:
        """The key of the practice's ``HiveParquetIOManager``."""
        return self("parquet_io_manager")

    @property
    def pool(self) -> str:
        """The concurrency pool of every step that calls the API: one per application, so
        the instance can limit steps per application (``deploy/dagster.yaml``)."""
        return f"{API_POOL}__{self.application}" if self.application else API_POOL

    @property
    def resource_keys(self) -> set[str]:
        """What a step that calls the API and reads the data needs."""
        return {self.api_resource, self.io_manager}

    def api(self, context: Any) -> DrchronoApiResource:
        """The practice's API resource in a step's or sensor's ``context``."""
        return getattr(context.resources, self.api_resource)

    def storage(self, context: Any) -> HiveParquetIOManager:
        """The practice's IO manager in a step's or sensor's ``context``."""
        return getattr(context.resources, self.io_manager)
