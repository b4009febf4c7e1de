"""``DrchronoPractice``: one drchrono practice, configured in a ``defs.yaml``.

The catalog stays Python; the YAML only says which practice, through which API application,
from which day, in which zone, and where its data goes. Every definition of the practice
(ingest assets, ``billing_report``, ``ar_aging``, checks, jobs, sensors, resources) carries
its name: ``clinic_a/appointments``, ``clinic_a__drchrono_changes``.

Secrets are never attributes: the YAML names the environment variables that hold them, and
the API resource reads them as ``dg.EnvVar``, so their values reach neither the YAML nor
Dagster's configuration in the UI (a ``{{ env.* }}`` template would put the value there).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg
from pydantic import Field, field_validator

from drchrono_assets import settings
from drchrono_assets.api.client_settings import SECRET_VARIABLES, tuning_from_env
from drchrono_assets.api.origins import require_https_base_url
from drchrono_assets.catalog import resources_named
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.practice import PracticeDefinitions
from drchrono_assets.practice_connections import PracticeConnection
from drchrono_assets.practice_names import name_problem
from drchrono_assets.resources import DrchronoApiResource


class DrchronoPractice(dg.Component, dg.Resolvable, dg.Model):
    """A drchrono practice: its ingest assets, billing report, checks, daily sensor and
    resources, every key prefixed with ``name``."""

    name: str = Field(description="The practice's name: its assets' key prefix (clinic_a).")
    application: str | None = Field(
        default=None,
        description="The API application it is connected through. Practices of one "
        "application share its request budget and concurrency pool.",
    )
    base_url: str = Field(default=settings.DEFAULT_BASE_URL, description="The API's origin.")
    client_id_env: str = Field(
        default=SECRET_VARIABLES["client_id"], description="The variable holding the client id."
    )
    client_secret_env: str = Field(
        default=SECRET_VARIABLES["client_secret"],
        description="The variable holding the client secret.",
    )
    token_store_env: str = Field(
        default=SECRET_VARIABLES["token_store"],
        description="The variable holding the token store (a file, or a PostgreSQL URL); "
        "unset, a file per application in ~/.drchrono_assets.",
    )
    start_date: str = Field(
        default=settings.DEFAULT_START_DATE, description="The first day (YYYY-MM-DD)."
    )
    timezone: str = Field(default=settings.DEFAULT_TIMEZONE, description="The practice's zone.")
    sync_hour: int = Field(
        default=settings.DEFAULT_SYNC_HOUR, ge=0, le=23, description="When the sweep starts."
    )
    data_root: str = Field(description="Where its datasets go: a folder or an fsspec URL.")
    data_group_read: bool = False
    s3_sse: str | None = None
    s3_sse_kms_key_id: str | None = None
    orphan_warning_threshold: int = Field(default=settings.DEFAULT_ORPHAN_WARN_THRESHOLD, ge=1)
    unbilled_warning_threshold: int = Field(default=settings.DEFAULT_UNBILLED_WARN_THRESHOLD, ge=1)
    resources: tuple[str, ...] | None = Field(
        default=None,
        description="The drchrono resources it ingests (appointments, doctors and "
        "transactions always: the billing report joins them); unset, all ten.",
    )
    deletion_check_days: int = Field(
        default=settings.DEFAULT_DELETION_CHECK_DAYS,
        ge=1,
        description="Every how many days a sweep checks patients for records deleted or merged "
        "in drchrono (one request; a full listing when the count differs).",
    )

    @field_validator("name", "application")
    @classmethod
    def _is_a_name(cls, value: str | None) -> str | None:
        problem = name_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @field_validator("timezone")
    @classmethod
    def _is_a_zone(cls, value: str) -> str:
        if not settings.is_zone(value):
            raise ValueError("not an IANA time zone name, e.g. America/New_York")
        return value

    @field_validator("start_date")
    @classmethod
    def _is_a_day(cls, value: str) -> str:
        day = settings.iso_day(value)  # ValueError says why
        if day > dt.date.today():
            raise ValueError("after today: give the first day to materialize")
        return value

    @field_validator("resources")
    @classmethod
    def _are_resources(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        resources_named(value)  # ValueError says which name and why
        return value

    @field_validator("base_url")
    @classmethod
    def _is_https(cls, value: str) -> str:
        try:
            require_https_base_url(value, setting="base_url")
        except ConfigurationError as problem:
            raise ValueError(str(problem)) from None
        return value

    def practice_settings(self) -> settings.PracticeSettings:
        """The practice's settings, as the definitions take them: its attributes of the
        same names."""
        fields = dataclasses.fields(settings.PracticeSettings)
        return settings.PracticeSettings(
            **{field.name: getattr(self, field.name) for field in fields}
        )

    def api_resource(self) -> DrchronoApiResource:
        """The practice's API resource: secrets as ``EnvVar`` references, the tuning of the
        ``DRCHRONO_*`` variables (shared by every practice of the deployment)."""
        connection = PracticeConnection(
            self.name,
            self.base_url,
            self.client_id_env,
            self.client_secret_env,
            self.token_store_env,
        )
        secrets = connection.secret_variables.items()
        given = {field: dg.EnvVar(name) for field, name in secrets if settings.env(name)}
        return DrchronoApiResource(
            base_url=self.base_url,
            data_root=self.data_root,
            practice=self.name,
            **given,
            **tuning_from_env(),
        )

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        settings.check_s3_sse(self.s3_sse, self.s3_sse_kms_key_id)
        practice = PracticeDefinitions.build(self.practice_settings())
        return practice.definitions(self.api_resource())


class DrchronoPracticeFromEnvironment(dg.Component, dg.Resolvable, dg.Model):
    """The practice configured by ``DRCHRONO_*`` variables, as before practices had names:
    its keys carry no prefix, so a deployment that upgrades keeps its assets and history."""

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        practice = settings.PracticeSettings.from_env()
        drchrono = DrchronoApiResource.from_env(data_root=practice.data_root)
        return PracticeDefinitions.build(practice).definitions(drchrono)
