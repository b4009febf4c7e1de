"""The data root with other processes at work: a writer killed mid-write leaves every dataset
whole and the next write cleans up after it; another user cannot write in place to a stored
day (as root, a forked child switched to ``nobody``)."""

import fcntl
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from upath import UPath

from drchrono_assets.io_managers import HiveDataset
from drchrono_assets.io_managers.hive_dataset import remove_abandoned_files
from drchrono_assets_tests.support.datasets import (
    FIRST,
    LAST,
    SNAPSHOT_DAYS,
    mode,
    run_charges,
    table,
)

pytestmark = pytest.mark.processes


ROWS = 2_000_000
# Rewrites two partitions of a large table through the IO manager's staging, forever.
_WRITER = f"""
import sys
import pyarrow as pa
import pyarrow.compute as pc
from upath import UPath
from drchrono_assets.io_managers.hive_dataset import (
    STAGING_FOLDER, HiveDataset, parquet_bytes, write_atomically,
)

root = UPath(sys.argv[1])
big = HiveDataset(root, "big")
ids = pa.array(range({ROWS}), pa.int64())
table = parquet_bytes(pa.table({{"id": ids, "name": pc.cast(ids, pa.string())}}))
while True:
    for day in ("2024-03-01", "2024-03-02"):
        write_atomically(table, [big.file(day)], root / STAGING_FOLDER)
"""


def _killed_mid_write(root: Path) -> None:
    """Start the writer, SIGKILL it while a staged file is being written."""
    staging = root / ".staging"
    second_day = HiveDataset(UPath(root), "big").file("2024-03-02")
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(root)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert writer.poll() is None, writer.stderr.read().decode()
            assert time.monotonic() < deadline, "the writer never staged a file"
            if second_day.exists() and list(staging.glob("*.partial")):
                # Stopped, it cannot rename the file between our look and the kill.
                writer.send_signal(signal.SIGSTOP)
                os.waitpid(writer.pid, os.WUNTRACED)
                if list(staging.glob("*.partial")):
                    break
                writer.send_signal(signal.SIGCONT)
            time.sleep(0.01)
    finally:
        writer.kill()
        writer.wait()


def test_writer_killed_mid_write_leaves_datasets_whole_and_the_next_write_cleans_up(
    tmp_path: Path,
) -> None:
    root = tmp_path / "data"
    staging = root / ".staging"
    _killed_mid_write(root)
    (abandoned,) = staging.iterdir()
    assert abandoned.name.endswith(".partial")
    outside_staging = [p for p in root.rglob("*") if p.is_file() and p.parent != staging]
    assert sorted(str(p.relative_to(root)) for p in outside_staging) == [
        "big/date=2024-03-01/part-0.parquet",
        "big/date=2024-03-02/part-0.parquet",
    ]
    counted = duckdb.sql(f"SELECT count(*) FROM read_parquet('{root}/big/*/*')").fetchall()
    assert counted == [(2 * ROWS,)]

    held = staging / "held.parquet.partial"  # another writer's, still being written
    fd = os.open(held, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        run_charges(root, "2024-03-01", "2024-03-02")
        assert not abandoned.exists()
        assert held.exists()
        remove_abandoned_files(UPath(staging))
        assert held.exists()
    finally:
        os.close(fd)
    remove_abandoned_files(UPath(staging))
    assert not held.exists()


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A new folder another user can reach (pytest's own are its user's alone)."""
    folder = Path(tempfile.mkdtemp(prefix="drchrono-at-rest-"))
    folder.chmod(0o711)  # others may pass through, not list
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


def unprivileged(root: Path, action: Callable[[], str]) -> str:
    """``action()`` run by a user without root's power over permission bits: this process
    when it is not root, else a forked child switched to ``nobody``, made owner of the data
    root's tree. Returns what it returned, or the error it raised, as text."""
    if os.geteuid() != 0:
        return action()
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root with no 'nobody' user to write as")
    if any(not mode(folder) & stat.S_IXOTH for folder in root.parents):
        pytest.skip(f"running as root and {tempfile.gettempdir()} is not reachable by others")
    for folder, subfolders, files in os.walk(root):
        for name in [folder, *(os.path.join(folder, child) for child in subfolders + files)]:
            os.chown(name, nobody.pw_uid, nobody.pw_gid)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        outcome = "child did not finish"
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            outcome = action()
        except BaseException:
            outcome = traceback.format_exc()
        finally:
            os.write(write_end, outcome.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


def test_a_write_in_place_to_one_day_fails_and_a_rerun_still_replaces_that_day(
    shared_tmp: Path,
) -> None:
    root = shared_tmp / "data"
    snapshot = table(7, 8)
    dataset = HiveDataset(UPath(root), "charges")
    dataset.write(dict.fromkeys(SNAPSHOT_DAYS, snapshot))

    def as_a_user() -> str:
        first = Path(dataset.file(FIRST).path)
        first.read_bytes()  # its owner reads it
        refused = []
        for flags in (os.O_RDWR, os.O_WRONLY | os.O_TRUNC):  # edited in place; `cp` onto it
            try:
                os.close(os.open(first, flags))
            except PermissionError:
                refused.append(flags)
        dataset.write({"2024-03-02": table(1)})  # the package's next run of one day
        return f"refused {len(refused)} of 2"

    assert unprivileged(root, as_a_user) == "refused 2 of 2"
    assert pq.read_table(dataset.file("2024-03-02").path).equals(table(1))
    for day in (FIRST, LAST):
        assert pq.read_table(dataset.file(day).path).equals(snapshot)
    assert mode(dataset.file("2024-03-02").path) == 0o400
