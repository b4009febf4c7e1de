"""Settings from the environment, and the code location as the Dagster CLI loads it."""

import subprocess
import sys
from pathlib import Path

import pytest

from drchrono_assets import settings
from drchrono_assets.errors import ConfigurationError
from drchrono_assets.resources import DrchronoApiResource

REPO = Path(__file__).resolve().parents[1]


def test_bad_timezone_and_start_date_name_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("DRCHRONO_TIMEZONE", "Mars/Olympus_Mons")
    with pytest.raises(ConfigurationError, match="DRCHRONO_TIMEZONE='Mars/Olympus_Mons'"):
        settings.timezone()
    monkeypatch.setenv("DRCHRONO_START_DATE", "03/01/2024")
    with pytest.raises(ConfigurationError, match="DRCHRONO_START_DATE='03/01/2024'"):
        settings.start_date()


def test_partitions_follow_the_practice_timezone_and_start_date() -> None:
    probe = (
        "from drchrono_assets.partitions import daily_partitions as p; "
        "print(p.timezone, p.start.date(), p.get_first_partition_key())"
    )
    env = {"DRCHRONO_TIMEZONE": "America/Chicago", "DRCHRONO_START_DATE": "2023-07-01"}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["America/Chicago", "2023-07-01", "2023-07-01"]


def test_workspace_loads_in_the_dagster_cli(tmp_path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr


def test_bi_database_is_defined_only_for_a_local_data_root() -> None:
    probe = (
        "from drchrono_assets.definitions import defs; "
        "print(sorted(k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()))"
    )
    for root, has_bi in (("data", True), ("s3://bucket/prefix", False)):
        out = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", probe],
            env={"DRCHRONO_DATA_ROOT": root, "HOME": "/tmp"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
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
    with pytest.raises(ConfigurationError, match="DRCHRONO_S3_SSE='aes256' is not one of"):
        settings.s3_sse()
    monkeypatch.setenv("DRCHRONO_S3_SSE", "AES256")
    monkeypatch.setenv("DRCHRONO_S3_SSE_KMS_KEY_ID", "alias/phi")
    with pytest.raises(ConfigurationError, match="needs DRCHRONO_S3_SSE=aws:kms"):
        settings.s3_sse_kms_key_id()
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
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", probe],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == (
        "AtRest(group_read=True, s3_sse='aws:kms', s3_sse_kms_key_id='alias/phi') "
        "{'s3_additional_kwargs': {'ServerSideEncryption': 'aws:kms', 'SSEKMSKeyId': 'alias/phi'}}"
    )


def test_server_side_encryption_is_refused_for_a_data_root_not_on_s3(tmp_path) -> None:
    """Data that would silently stay unencrypted: the run stops before any request."""
    from drchrono_assets.io_managers import HiveParquetIOManager

    manager = HiveParquetIOManager(data_root=str(tmp_path), s3_sse="AES256")
    with pytest.raises(ConfigurationError, match=r"DRCHRONO_S3_SSE=AES256 applies only to an s3"):
        manager.setup_for_execution(None)  # type: ignore[arg-type]  # the context is unused
