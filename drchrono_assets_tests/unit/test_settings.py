"""Settings from the environment, read when asked for or when the code location is imported
(in a fresh interpreter); the Dagster CLI loading it is integration/test_code_location_cli.py."""

import datetime as dt
import zoneinfo
from collections.abc import Callable

import dagster as dg
import pytest

from drchrono_assets import settings
from drchrono_assets.api import ClientSettings
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets_tests.support.imports import fresh_python


def _message(read: Callable[[], object], monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    """The message of the ``ConfigurationError`` that ``read()`` raises under ``variables``."""
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        read()
    return str(raised.value)


def test_bad_timezone_and_start_date_name_the_variable(monkeypatch) -> None:
    assert _message(settings.timezone, monkeypatch, DRCHRONO_TIMEZONE="Mars/Olympus_Mons") == (
        "DRCHRONO_TIMEZONE='Mars/Olympus_Mons' is not an IANA time zone name: set it to the "
        "practice's zone, e.g. America/New_York, or unset it for UTC"
    )
    monkeypatch.delenv("DRCHRONO_TIMEZONE")
    today = dt.datetime.now(zoneinfo.ZoneInfo("UTC")).date()
    fix = f"give the first day to materialize as YYYY-MM-DD, up to today ({today}), e.g. 2024-01-01"
    for value, problem in (
        ("03/01/2024", "is not a date in YYYY-MM-DD form"),
        ("20240301", "is not a date in YYYY-MM-DD form"),  # fromisoformat takes it; Dagster not
        ("2024-13-01", "is not a valid date (month must be in 1..12)"),
        ("2024-02-30", "is not a valid date (day is out of range for month)"),
        ("2999-01-01", f"is after today ({today} in UTC)"),
    ):
        message = _message(settings.start_date, monkeypatch, DRCHRONO_START_DATE=value)
        assert message == f"DRCHRONO_START_DATE={value!r} {problem}: {fix}"
    monkeypatch.setenv("DRCHRONO_START_DATE", today.isoformat())  # no partition yet, but valid
    assert settings.start_date() == today.isoformat()


# (variable, value, problem, allowed values, default)
BAD_TUNING = [
    ("DRCHRONO_PAGE_SIZE", "abc", "is not a whole number", "a whole number from 1 to 250", "250"),
    ("DRCHRONO_PAGE_SIZE", "0", "is below 1", "a whole number from 1 to 250", "250"),
    ("DRCHRONO_PAGE_SIZE", "251", "is above 250", "a whole number from 1 to 250", "250"),
    ("DRCHRONO_PAGE_SIZE", "2.5", "is not a whole number", "a whole number from 1 to 250", "250"),
    ("DRCHRONO_REQUESTS_PER_HOUR", "0", "is below 1", "a whole number of at least 1", "500"),
    ("DRCHRONO_REQUESTS_PER_SECOND", "fast", "is not a number", "a number of at least 1", "10"),
    ("DRCHRONO_REQUESTS_PER_SECOND", "0.5", "is below 1", "a number of at least 1", "10"),
    ("DRCHRONO_REQUEST_BUDGET_WINDOW_SECONDS", "0", "is not above 0", "a number above 0", "3600"),
    ("DRCHRONO_REQUEST_BUDGET_WINDOW_SECONDS", "inf", "is not a finite number", "a number above 0",
     "3600"),
    ("DRCHRONO_RETRY_BACKOFF_SECONDS", "-1", "is not above 0", "a number above 0", "2"),
    ("DRCHRONO_RETRY_BACKOFF_SECONDS", "nan", "is not a finite number", "a number above 0", "2"),
]  # fmt: skip


@pytest.mark.parametrize(("variable", "value", "problem", "allowed", "default"), BAD_TUNING)
def test_a_bad_tuning_variable_is_refused_when_read_naming_it_and_its_range(
    monkeypatch, variable: str, value: str, problem: str, allowed: str, default: str
) -> None:
    """Refused where it is read (the code location's load), not sent as is or left to
    pydantic to name the resource field."""
    for read in (DrchronoApiResource.from_env, ClientSettings.from_env):
        message = _message(read, monkeypatch, **{variable: value})
        assert message.startswith(f"{variable}={value!r} {problem}: set it to {allowed}")
        assert message.endswith(f", or unset it for the default {default}")


def test_tuning_variables_in_range_are_converted(monkeypatch) -> None:
    monkeypatch.setenv("DRCHRONO_PAGE_SIZE", " 250 ")
    monkeypatch.setenv("DRCHRONO_RETRY_BACKOFF_SECONDS", "0.05")
    monkeypatch.setenv("DRCHRONO_API_VERSION", "2024-01")
    api = DrchronoApiResource.from_env()
    assert (api.page_size, api.backoff_initial_seconds, api.api_version) == (250, 0.05, "2024-01")
    assert ClientSettings.from_env().page_size == 250


def test_a_field_out_of_range_names_the_field_and_its_variable() -> None:
    """Values from Dagster config never pass through the variables: the settings check too."""
    with pytest.raises(ConfigurationError) as raised:
        DrchronoApiResource(page_size=0).client_settings()
    assert str(raised.value) == (
        "drchrono resource field page_size=0 (DRCHRONO_PAGE_SIZE) is below 1: set it to a "
        "whole number from 1 to 250 (the API's largest page), or leave it unset for the "
        "default 250"
    )
    with pytest.raises(ConfigurationError, match=r"^drchrono resource field max_attempts=0 is "):
        ClientSettings(max_attempts=0)  # a field without a variable


def test_a_field_out_of_range_in_run_config_fails_the_run_before_any_step() -> None:
    ran: list[bool] = []

    @dg.asset
    def probe(drchrono: DrchronoApiResource) -> None:
        ran.append(True)

    with pytest.raises(dg.DagsterResourceFunctionError) as raised:
        dg.materialize(
            [probe],
            resources={"drchrono": DrchronoApiResource.configure_at_launch()},
            run_config={"resources": {"drchrono": {"config": {"requests_per_hour": 0}}}},
        )
    assert isinstance(raised.value.__cause__, ConfigurationError)
    assert "requests_per_hour=0 (DRCHRONO_REQUESTS_PER_HOUR) is below 1" in str(
        raised.value.__cause__
    )
    assert not ran


def test_other_settings_read_at_load_name_the_variable_and_range(monkeypatch) -> None:
    assert _message(
        settings.orphan_warning_threshold, monkeypatch, DRCHRONO_ORPHAN_WARN_THRESHOLD="0"
    ) == (
        "DRCHRONO_ORPHAN_WARN_THRESHOLD='0' is below 1: set it to a whole number of at least 1, "
        "or unset it for the default 2"
    )
    assert _message(settings.sync_hour, monkeypatch, DRCHRONO_SYNC_HOUR="24") == (
        "DRCHRONO_SYNC_HOUR='24' is above 23: set it to a whole number from 0 to 23, "
        "or unset it for the default 4"
    )
    monkeypatch.setenv("DRCHRONO_SYNC_HOUR", "0")
    assert settings.sync_hour() == 0
    assert _message(
        settings.deletion_check_days, monkeypatch, DRCHRONO_DELETION_CHECK_DAYS="0"
    ) == (
        "DRCHRONO_DELETION_CHECK_DAYS='0' is below 1: set it to a whole number of at least 1, "
        "or unset it for the default 7"
    )
    monkeypatch.delenv("DRCHRONO_ORPHAN_WARN_THRESHOLD")
    monkeypatch.setenv("DRCHRONO_UNBILLED_WARN_THRESHOLD", "many")
    with pytest.raises(ConfigurationError, match="DRCHRONO_UNBILLED_WARN_THRESHOLD='many' is not"):
        settings.PracticeSettings.from_env()  # what the code location calls at load


def test_the_practice_settings_are_read_from_their_variables(monkeypatch) -> None:
    assert settings.PracticeSettings.from_env() == settings.PracticeSettings()
    values = {
        "DRCHRONO_START_DATE": "2023-07-01",
        "DRCHRONO_TIMEZONE": "America/Chicago",
        "DRCHRONO_SYNC_HOUR": "6",
        "DRCHRONO_ORPHAN_WARN_THRESHOLD": "5",
        "DRCHRONO_UNBILLED_WARN_THRESHOLD": "7",
        "DRCHRONO_DATA_ROOT": "s3://bucket/prefix",
        "DRCHRONO_DATA_GROUP_READ": "yes",
        "DRCHRONO_S3_SSE": "aws:kms",
        "DRCHRONO_S3_SSE_KMS_KEY_ID": "alias/phi",
        "DRCHRONO_DELETION_CHECK_DAYS": "1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    assert settings.PracticeSettings.from_env() == settings.PracticeSettings(
        start_date="2023-07-01",
        timezone="America/Chicago",
        sync_hour=6,
        orphan_warning_threshold=5,
        unbilled_warning_threshold=7,
        data_root="s3://bucket/prefix",
        data_group_read=True,
        s3_sse="aws:kms",
        s3_sse_kms_key_id="alias/phi",
        deletion_check_days=1,
    )


def test_partitions_follow_the_practice_timezone_and_start_date() -> None:
    probe = (
        "from drchrono_assets.definitions import defs; "
        "p = defs.resolve_assets_def('appointments').partitions_def; "
        "print(p.timezone, p.start.date(), p.get_first_partition_key())"
    )
    env = {"DRCHRONO_TIMEZONE": "America/Chicago", "DRCHRONO_START_DATE": "2023-07-01"}
    assert fresh_python(probe, env).split() == ["America/Chicago", "2023-07-01", "2023-07-01"]


def test_bi_database_is_defined_only_for_a_local_data_root() -> None:
    probe = (
        "from drchrono_assets.definitions import defs; "
        "print(sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()))"
    )
    for root, has_bi in (("data", True), ("s3://bucket/prefix", False)):
        out = fresh_python(probe, {"DRCHRONO_DATA_ROOT": root, "HOME": "/tmp"})
        assert ("bi_duckdb" in out) is has_bi and "billing_report" in out


def test_request_budget_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("DRCHRONO_REQUESTS_PER_HOUR", "300")
    monkeypatch.setenv("DRCHRONO_REQUESTS_PER_SECOND", "4")
    api = DrchronoApiResource.from_env()
    assert (api.requests_per_hour, api.requests_per_second) == (300, 4)


def test_data_protection_settings_are_validated_and_name_the_variable(monkeypatch) -> None:
    assert settings.data_group_read() is False
    assert (settings.s3_sse(), settings.s3_sse_kms_key_id()) == (None, None)
    monkeypatch.setenv("DRCHRONO_DATA_GROUP_READ", "True")
    assert settings.data_group_read() is True
    monkeypatch.setenv("DRCHRONO_DATA_GROUP_READ", "readers")
    with pytest.raises(ConfigurationError, match="DRCHRONO_DATA_GROUP_READ='readers'"):
        settings.data_group_read()
    monkeypatch.setenv("DRCHRONO_S3_SSE", "aes256")
    assert _message(settings.s3_sse, monkeypatch) == (
        "DRCHRONO_S3_SSE='aes256' is not one of AES256, aws:kms: set it to AES256 (SSE-S3) or "
        "aws:kms (SSE-KMS), exactly so spelled, or unset it for the bucket's default encryption"
    )
    monkeypatch.setenv("DRCHRONO_S3_SSE", "AES256")
    monkeypatch.setenv("DRCHRONO_S3_SSE_KMS_KEY_ID", "alias/phi")
    assert _message(settings.s3_sse_kms_key_id, monkeypatch) == (
        "DRCHRONO_S3_SSE_KMS_KEY_ID needs DRCHRONO_S3_SSE=aws:kms, but DRCHRONO_S3_SSE is "
        "'AES256': set DRCHRONO_S3_SSE=aws:kms, or unset DRCHRONO_S3_SSE_KMS_KEY_ID"
    )
    monkeypatch.setenv("DRCHRONO_S3_SSE", "aws:kms")
    assert (settings.s3_sse(), settings.s3_sse_kms_key_id()) == ("aws:kms", "alias/phi")


def test_the_code_location_passes_the_data_protection_settings_to_the_io_manager() -> None:
    probe = (
        "from drchrono_assets.definitions import defs; "
        "manager = defs.resources['parquet_io_manager']; "
        "print(manager.at_rest, manager.root.storage_options)"
    )
    env = {
        "DRCHRONO_DATA_ROOT": "s3://bucket/prefix",
        "DRCHRONO_DATA_GROUP_READ": "true",
        "DRCHRONO_S3_SSE": "aws:kms",
        "DRCHRONO_S3_SSE_KMS_KEY_ID": "alias/phi",
        "HOME": "/tmp",
    }
    out = fresh_python(probe, env)
    assert out.strip() == (
        "AtRest(group_read=True, s3_sse='aws:kms', s3_sse_kms_key_id='alias/phi') "
        "{'s3_additional_kwargs': {'ServerSideEncryption': 'aws:kms', 'SSEKMSKeyId': 'alias/phi'}}"
    )


def test_server_side_encryption_is_refused_for_a_data_root_not_on_s3(tmp_path) -> None:
    """Data that would silently stay unencrypted: the run stops before any request."""
    from drchrono_assets.io_managers import HiveParquetIOManager

    manager = HiveParquetIOManager(data_root=str(tmp_path), s3_sse="AES256")
    with pytest.raises(ConfigurationError, match=r"DRCHRONO_S3_SSE=AES256 applies only to an s3"):
        manager.setup_for_execution(dg.build_init_resource_context())
