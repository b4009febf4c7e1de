"""HiveDataset on local disk: the layout, listing, reading, scanning and writing of one asset."""

import datetime as dt
import os
from pathlib import Path

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from upath import UPath

from drchrono_assets.io_managers import HiveDataset

SCHEMA = pa.schema([("id", pa.int64()), ("name", pa.string())])


def table(*ids: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": n, "name": f"n{n}"} for n in ids], SCHEMA)


@pytest.fixture
def dataset(tmp_path: Path) -> HiveDataset:
    return HiveDataset(UPath(tmp_path), "charges")


def test_layout_is_the_public_hive_contract(tmp_path: Path) -> None:
    nested = HiveDataset(UPath(tmp_path), dg.AssetKey(["billing", "charges"]))
    assert nested.folder.path == str(tmp_path / "billing" / "charges")
    assert nested.file("2024-01-02").path == str(
        tmp_path / "billing" / "charges" / "date=2024-01-02" / "part-0.parquet"
    )
    assert nested.file().path == str(tmp_path / "billing" / "charges" / "part-0.parquet")
    assert nested.glob.path == str(tmp_path / "billing" / "charges" / "date=*" / "part-0.parquet")
    assert HiveDataset(UPath(tmp_path), "charges").folder == (
        HiveDataset(UPath(tmp_path), dg.AssetKey("charges")).folder
    )


def test_partition_keys_lists_only_partitions_with_a_file(dataset: HiveDataset) -> None:
    assert dataset.partition_keys() == []
    dataset.write({"2024-03-05": table(1), "2024-03-02": table(2)})
    (dataset.folder / "date=2024-03-09").mkdir()  # a folder a crashed writer left empty
    (dataset.folder / "notes").mkdir()
    assert dataset.partition_keys() == ["2024-03-02", "2024-03-05"]


def test_read_adds_the_partition_column_back(dataset: HiveDataset) -> None:
    dataset.write({"2024-03-02": table(1, 2), "2024-03-03": table(3)})
    both = dataset.read(["2024-03-02", "2024-03-03"])
    assert both["id"].to_pylist() == [1, 2, 3]
    assert both.schema.field("date").type == pa.date32()
    assert both["date"].to_pylist() == [dt.date(2024, 3, 2)] * 2 + [dt.date(2024, 3, 3)]
    assert dataset.read(["2024-03-03"], columns=["id"]).column_names == ["id", "date"]


def test_read_of_an_unpartitioned_file_has_no_partition_column(dataset: HiveDataset) -> None:
    dataset.write({None: table(1)})
    assert dataset.read([None]).equals(table(1))


def test_read_of_a_missing_partition_is_a_clear_error(dataset: HiveDataset) -> None:
    with pytest.raises(FileNotFoundError, match=r"^charges partition 2024-03-02 has not been"):
        dataset.read(["2024-03-02"])


def test_empty_table_has_the_schema_read_returns(dataset: HiveDataset) -> None:
    dataset.write({"2024-03-02": table()})
    assert dataset.empty_table(SCHEMA).schema == dataset.read(["2024-03-02"]).schema


def test_scan_keeps_the_matches_of_every_partition(dataset: HiveDataset) -> None:
    wanted = ["id", dataset.partition_column]
    assert dataset.scan(wanted, pc.field("id").isin([1])).num_rows == 0
    dataset.write({"2024-03-02": table(1, 2), "2024-03-03": table(3, 4)})
    found = dataset.scan(wanted, pc.field("id").isin([2, 3, 9]))
    assert sorted(found.to_pylist(), key=lambda row: row["id"]) == [
        {"id": 2, "date": dt.date(2024, 3, 2)},
        {"id": 3, "date": dt.date(2024, 3, 3)},
    ]


def test_glob_reads_every_partition_as_one_dataset_in_duckdb(dataset: HiveDataset) -> None:
    dataset.write({"2024-03-02": table(1, 2), "2024-03-03": table(3)})
    rows = duckdb.sql(
        f"SELECT date, count(*) FROM read_parquet('{dataset.glob.path}', hive_partitioning = "
        f"true, hive_types = {{'{dataset.partition_column}': DATE}}) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert rows == [(dt.date(2024, 3, 2), 2), (dt.date(2024, 3, 3), 1)]


def test_write_replaces_files_and_leaves_nothing_staged(dataset: HiveDataset) -> None:
    dataset.write({"2024-03-02": table(1, 2)})
    snapshot = table(7)
    dataset.write({"2024-03-02": snapshot, "2024-03-03": snapshot})
    assert pq.read_table(dataset.file("2024-03-02").path).equals(snapshot)
    assert dataset.file("2024-03-02").read_bytes() == dataset.file("2024-03-03").read_bytes()
    assert [p.name for p in dataset.file("2024-03-02").parent.iterdir()] == ["part-0.parquet"]
    assert list((dataset.root / ".staging").iterdir()) == []


def test_a_snapshot_is_stored_once_and_every_day_links_to_it(dataset: HiveDataset) -> None:
    days = ["2024-03-01", "2024-03-02", "2024-03-03"]
    snapshot = table(7, 8)
    dataset.write(dict.fromkeys(days, snapshot))
    assert len({os.stat(dataset.file(day).path).st_ino for day in days}) == 1
    assert list((dataset.root / ".staging").iterdir()) == []
    # A later run replaces one day's file; the other days keep theirs.
    dataset.write({"2024-03-02": table(1)})
    assert pq.read_table(dataset.file("2024-03-02").path).equals(table(1))
    for day in ("2024-03-01", "2024-03-03"):
        assert pq.read_table(dataset.file(day).path).equals(snapshot)


def test_write_refuses_a_column_named_like_the_partition_column(dataset: HiveDataset) -> None:
    clashing = table(1).append_column("date", pa.array([dt.date(2024, 3, 2)]))
    with pytest.raises(TypeError, match=r"^charges: a 'date' column would clash"):
        dataset.write({"2024-03-02": clashing})
    assert dataset.partition_keys() == []


def test_write_refuses_partitions_of_different_schemas(dataset: HiveDataset) -> None:
    with pytest.raises(TypeError, match=r"^charges: partitions differ in schema"):
        dataset.write({"2024-03-02": table(1), "2024-03-03": table(2).drop_columns(["name"])})
    assert dataset.partition_keys() == []


def test_a_writer_waits_for_a_read_merge_write_of_the_same_asset(dataset: HiveDataset) -> None:
    """A backfill's write cannot land between a merge's read and its write (a lost update)."""
    import threading

    dataset.write({"2024-01-02": table(1)})
    merging, backfilled = threading.Event(), threading.Event()

    def backfill() -> None:
        merging.wait()
        dataset.write({"2024-01-02": table(1, 2)})  # the day listed again: 2 is new
        backfilled.set()

    thread = threading.Thread(target=backfill)
    thread.start()

    def merge(stored: dict[str, pa.Table]) -> dict[str, pa.Table]:
        merging.set()
        assert not backfilled.wait(0.5)  # held off while the merge reads and writes
        return {"2024-01-02": pa.concat_tables([stored["2024-01-02"], table(3)])}

    dataset.update(["2024-01-02"], merge)
    thread.join()
    assert dataset.read(["2024-01-02"])["id"].to_pylist() == [1, 2]  # the later writer's


def test_a_file_is_never_replaced_by_an_older_version(dataset: HiveDataset) -> None:
    from drchrono_assets.source.versions import version_of, with_version

    early, late = dt.datetime(2024, 3, 1, tzinfo=dt.UTC), dt.datetime(2024, 3, 2, tzinfo=dt.UTC)
    assert dataset.write({"2024-01-02": with_version(table(1, 2), late)}) == set()
    kept = dataset.write(
        {"2024-01-02": with_version(table(1), early), "2024-01-03": with_version(table(5), early)}
    )
    assert kept == {"2024-01-02"}
    assert dataset.read(["2024-01-02"])["id"].to_pylist() == [1, 2]
    assert dataset.read(["2024-01-03"])["id"].to_pylist() == [5]
    stored = dataset.read_files(["2024-01-02", "2024-01-04"])
    assert list(stored) == ["2024-01-02"] and version_of(stored["2024-01-02"]) == late
    dataset.write({"2024-01-02": table(7)})  # unversioned (a report): written as always
    assert dataset.read(["2024-01-02"])["id"].to_pylist() == [7]
