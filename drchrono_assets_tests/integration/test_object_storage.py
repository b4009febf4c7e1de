"""``DRCHRONO_DATA_ROOT=s3://...`` against a real S3-compatible server (moto) on 127.0.0.1.

Only the standard AWS variables configure the client, as in production: credentials, region
and the ``AWS_ENDPOINT_URL`` override. The asset code talks to the server over HTTP through
s3fs; the checks read back with boto3 and pyarrow's own S3 client.
"""

from __future__ import annotations

import datetime as dt
import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
import s3fs
from moto.server import ThreadedMotoServer
from upath import UPath

from drchrono_assets.billing.report import REPORT_SCHEMA
from drchrono_assets.catalog import RESOURCES
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveDataset, HiveParquetIOManager
from drchrono_assets.resources import DrchronoApiResource
from drchrono_assets.sync.staged import PlannedRun, StagedChanges, SweepPlan, SyncState
from drchrono_assets.sync.sweep import stored_days
from drchrono_assets_tests.support.assets import SPECS, materialize, served, unversioned
from drchrono_assets_tests.support.definitions import ar_aging, billing_report, resource_assets
from drchrono_sandbox import SandboxServer

pytestmark = pytest.mark.s3

PREFIX = "prod"
# Monday to Sunday: the weekend has no visits, so its daily files are empty.
WEEK = DayWindow(dt.date(2024, 3, 4), dt.date(2024, 3, 10))
PARTITIONED = [*(spec.name for spec in RESOURCES), "billing_report"]
SERVER_ONLY = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A fresh bucket, and the environment pointing every AWS client at the local server."""
    for name in SERVER_ONLY:
        monkeypatch.delenv(name, raising=False)
    # A developer's ~/.aws profile must not redirect the test.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    # fsspec reuses one S3FileSystem per set of options, with the endpoint it was made with.
    s3fs.S3FileSystem.clear_instance_cache()
    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    yield name
    s3fs.S3FileSystem.clear_instance_cache()


def object_keys(bucket: str) -> list[str]:
    """Every object key in ``bucket``, as listed by the server (not by s3fs)."""
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def expected_keys(window: DayWindow) -> list[str]:
    daily = [
        f"{PREFIX}/{name}/date={day}/part-0.parquet"
        for name in PARTITIONED
        for day in window.partition_keys
    ]
    return sorted([*daily, f"{PREFIX}/ar_aging/part-0.parquet"])


def object_path(bucket: str, name: str, day: str | None = None) -> str:
    """The object of partition ``day`` of ``name`` (or of unpartitioned ``name``), as pyarrow's
    S3 client names it."""
    return HiveDataset(UPath(f"s3://{bucket}/{PREFIX}"), name).file(day).path


def arrow_s3(endpoint: str) -> pafs.S3FileSystem:
    """pyarrow's own S3 client: an independent reader of what s3fs wrote."""
    host = endpoint.removeprefix("http://")
    return pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        endpoint_override=host,
        scheme="http",
    )


def run(
    api: DrchronoApiResource,
    bucket: str,
    first: str,
    last: str,
    io_manager: HiveParquetIOManager | None = None,
) -> dg.ExecuteInProcessResult:
    if io_manager is None:
        io_manager = HiveParquetIOManager(data_root=f"s3://{bucket}/{PREFIX}")
    resources: dict[str, Any] = {"drchrono": api, "parquet_io_manager": io_manager}
    return materialize(resources, first, last, assets=[*resource_assets, billing_report, ar_aging])


def rows_by_day(fs: pafs.S3FileSystem, bucket: str, name: str) -> dict[str, int]:
    """Rows per partition of a whole dataset read as one, the way a BI engine would."""
    dataset = ds.dataset(f"{bucket}/{PREFIX}/{name}", filesystem=fs, partitioning="hive")
    counts = dataset.to_table().group_by("date").aggregate([([], "count_all")])
    return {str(day): count for day, count in zip(*counts.to_pydict().values(), strict=True)}


def test_a_week_lands_as_one_object_per_partition_and_reads_back(
    quiet_sandbox: SandboxServer, api: DrchronoApiResource, bucket: str, s3_endpoint: str
) -> None:
    result = run(api, bucket, WEEK.partition_keys[0], WEEK.partition_keys[-1])
    assert result.success

    # Exactly the hive layout: no temporary objects, no unfinished multipart uploads.
    assert object_keys(bucket) == expected_keys(WEEK)
    assert "Uploads" not in boto3.client("s3").list_multipart_uploads(Bucket=bucket)

    fs = arrow_s3(s3_endpoint)
    for name in ("appointments", "transactions", "patients"):
        for day in WEEK.partition_keys:
            table = pq.read_table(object_path(bucket, name, day), filesystem=fs)
            assert table.num_rows == len(served(quiet_sandbox, name, day)), (name, day)
    assert sum(len(served(quiet_sandbox, "appointments", d)) for d in WEEK.partition_keys) > 50

    # A sweep finds the days that store changed records, on object storage too.
    io_manager = HiveParquetIOManager(data_root=f"s3://{bucket}/{PREFIX}")
    day = WEEK.partition_keys[2]
    some = [appointment["id"] for appointment in served(quiet_sandbox, "appointments", day)[:3]]
    found = stored_days(io_manager, SPECS["appointments"], pa.array([*some, "no-such-id"]))
    assert found == dict.fromkeys(some, day)

    # billing_report was built from the upstream partitions read back from S3.
    report = pq.read_table(f"{bucket}/{PREFIX}/billing_report", filesystem=fs, partitioning="hive")
    assert report.num_rows > 0
    assert pa.types.is_decimal(report.schema.field("billed").type)
    (aging_event,) = [
        event
        for event in result.get_asset_materialization_events()
        if event.asset_key == ar_aging.key
    ]
    metadata = aging_event.materialization.metadata
    assert metadata["partitions_read"].value == len(WEEK.partition_keys)
    assert metadata["as_of"].value == WEEK.partition_keys[-1]
    assert pq.read_table(object_path(bucket, "ar_aging"), filesystem=fs).num_rows > 0


def test_rematerializing_an_overlapping_range_replaces_objects(
    quiet_sandbox: SandboxServer, api: DrchronoApiResource, bucket: str, s3_endpoint: str
) -> None:
    assert run(api, bucket, "2024-03-04", "2024-03-10").success
    before = object_keys(bucket)
    fs = arrow_s3(s3_endpoint)
    counts = {name: rows_by_day(fs, bucket, name) for name in ("appointments", "billing_report")}

    result = run(api, bucket, "2024-03-06", "2024-03-10")
    assert result.success
    assert len(result.get_asset_materialization_events()) == len(PARTITIONED) * 5 + 1

    assert object_keys(bucket) == before == expected_keys(WEEK)
    for name, by_day in counts.items():
        assert rows_by_day(fs, bucket, name) == by_day, name
    assert counts["appointments"] == {
        day: len(served(quiet_sandbox, "appointments", day))
        for day in WEEK.partition_keys
        if served(quiet_sandbox, "appointments", day)
    }


def test_every_file_of_a_dataset_has_one_schema_empty_days_included(
    quiet_sandbox: SandboxServer, api: DrchronoApiResource, bucket: str, s3_endpoint: str
) -> None:
    assert run(api, bucket, WEEK.partition_keys[0], WEEK.partition_keys[-1]).success
    assert served(quiet_sandbox, "appointments", "2024-03-10") == []
    fs = arrow_s3(s3_endpoint)
    for name in PARTITIONED:
        expected = REPORT_SCHEMA if name == "billing_report" else SPECS[name].schema
        for day in WEEK.partition_keys:
            schema = pq.read_schema(object_path(bucket, name, day), filesystem=fs)
            assert unversioned(schema).equals(expected, check_metadata=True), (name, day)
    sunday = pq.read_table(object_path(bucket, "appointments", "2024-03-10"), filesystem=fs)
    assert sunday.num_rows == 0


def test_partition_keys_sees_objects_another_writer_just_put(bucket: str) -> None:
    reports = HiveParquetIOManager(data_root=f"s3://{bucket}/{PREFIX}").dataset(billing_report.key)
    assert reports.partition_keys() == []

    def put(day: str) -> None:
        # Another process (a parallel run, a restore) writes behind this process's back.
        buffer = io.BytesIO()
        pq.write_table(REPORT_SCHEMA.empty_table(), buffer)
        key = f"{PREFIX}/billing_report/date={day}/part-0.parquet"
        boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())

    put("2024-03-04")
    assert reports.partition_keys() == ["2024-03-04"]
    put("2024-03-05")
    assert reports.partition_keys() == ["2024-03-04", "2024-03-05"]
    table = reports.read(["2024-03-04", "2024-03-05"])
    assert table.num_rows == 0 and table.schema.field("date").type == pa.date32()


def test_writers_of_one_asset_take_turns_through_a_lease_object(
    bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On object storage the writer lock is an object created only if absent; a dead holder's
    lease expires; a released lease leaves no object behind."""
    import json
    import threading
    import time

    from drchrono_assets.io_managers import writer_lock as locks

    monkeypatch.setattr(locks, "POLL_SECONDS", 0.05)
    root = UPath(f"s3://{bucket}/{PREFIX}")
    inside: list[str] = []

    def write(name: str) -> None:
        with locks.writer_lock(root, "appointments"):
            inside.append(f"{name} in")
            time.sleep(0.3)
            inside.append(f"{name} out")

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [entry.split()[1] for entry in inside] == ["in", "out", "in", "out"]
    assert inside[0].split()[0] == inside[1].split()[0]
    assert object_keys(bucket) == []
    # A holder that died: its lease expired an hour ago, so the next writer takes over.
    dead = {"owner": "dead", "expires": time.time() - 1}
    boto3.client("s3").put_object(
        Bucket=bucket, Key=f"{PREFIX}/.locks/appointments.lock", Body=json.dumps(dead)
    )
    with locks.writer_lock(root, "appointments", wait_seconds=5):
        pass
    assert object_keys(bucket) == []


@pytest.mark.parametrize("sse", ["AES256", "aws:kms"], ids=["sse-s3", "sse-kms"])
def test_every_object_written_asks_for_server_side_encryption(
    quiet_sandbox: SandboxServer, api: DrchronoApiResource, bucket: str, sse: str
) -> None:
    """Datasets, the writability probe, writer leases, staged changes, a plan and the sync
    state: each PUT asks for the configured encryption. The bucket keeps versions, so the
    objects deleted after use (probe, leases) still show how they were written."""
    s3 = boto3.client("s3")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key_id = boto3.client("kms").create_key()["KeyMetadata"]["KeyId"] if sse == "aws:kms" else None
    io_manager = HiveParquetIOManager(
        data_root=f"s3://{bucket}/{PREFIX}", s3_sse=sse, s3_sse_kms_key_id=key_id
    )
    day = WEEK.partition_keys[0]
    assert run(api, bucket, day, day, io_manager).success
    staged = StagedChanges.of(io_manager)
    sweep = StagedChanges.new_sweep_id(dt.datetime(2024, 3, 5, 6, 0))
    changes = pa.table({"id": ["1"]})
    staged.write(sweep, "appointments", changes)
    staged.leave_waiting("appointments", changes)
    plan_run = PlannedRun(("appointments",), "merge", day, day)
    staged.write_plan(
        SweepPlan(sweep, day, day, "2024-03-05T06:00:00+00:00", day, day, (plan_run,))
    )
    staged.save_state(SyncState(f"{day}T00:00:00", day, day, sweep))

    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    versions = [version for page in pages for version in page.get("Versions", [])]
    written = {}
    for version in versions:
        head = s3.head_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        written[version["Key"]] = (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId"))
    kinds = {
        "probe": f"{PREFIX}/.staging/probe-",
        "lease": f"{PREFIX}/.locks/appointments.lock",
        "dataset": f"{PREFIX}/appointments/date={day}/part-0.parquet",
        "report": f"{PREFIX}/ar_aging/part-0.parquet",
        "changes": f"{PREFIX}/.changes/{sweep}/appointments.parquet",
        "plan": f"{PREFIX}/.changes/{sweep}/plan.json",
        "waiting": f"{PREFIX}/.changes/waiting/appointments.parquet",
        "state": f"{PREFIX}/.changes/state.json",
    }
    for kind, prefix in kinds.items():
        assert any(key.startswith(prefix) for key in written), kind
    for key, (algorithm, kms_key) in written.items():
        assert algorithm == sse, key
        if key_id is not None:
            assert kms_key is not None and kms_key.endswith(key_id), key
