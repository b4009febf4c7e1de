"""`drchrono-assets demo` (`make demo`): a week of every asset from the sandbox, and where it
went."""

import os
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from drchrono_assets.catalog import RESOURCES
from drchrono_assets_tests.support.processes import DRCHRONO_ASSETS
from drchrono_sandbox.generate.offset import ID_STEP

pytestmark = pytest.mark.processes


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    tmp_path = tmp_path_factory.mktemp("demo")
    return demo(tmp_path), tmp_path


def demo(folder: Path, *arguments: str) -> subprocess.CompletedProcess:
    """``drchrono-assets demo ARGUMENTS`` in ``folder`` (its home, data under ``data``),
    which must succeed."""
    done = subprocess.run(
        [DRCHRONO_ASSETS, "demo", "--data-root", str(folder / "data"), *arguments],
        cwd=folder,
        env={**os.environ, "HOME": str(folder)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_demo_materializes_a_week_of_every_asset_and_reports_rows(demo_run) -> None:
    done, tmp_path = demo_run
    rows = dict(re.findall(r"^  (\w+)\s+(\d+) rows", done.stdout, re.M))
    names = [spec.name for spec in RESOURCES] + ["billing_report", "ar_aging"]
    assert sorted(rows) == sorted(names)
    assert all(int(rows[name]) > 0 for name in names)
    assert (tmp_path / "data" / "drchrono.duckdb").exists()
    assert re.search(r"with (\d+) API requests", done.stdout)


def test_demo_output_fits_one_screen_with_the_full_log_one_file_away(demo_run) -> None:
    done, _ = demo_run
    assert len(done.stdout.splitlines()) <= 35, done.stdout
    assert "Warning" not in done.stdout + done.stderr
    (log_name,) = re.findall(r"full log: (\S+)\)", done.stdout)
    assert "RUN_SUCCESS" in Path(log_name).read_text()
    verdict = r"^  billing_report_\w+\s+(passed|WARN: .+|ERROR: .+)$"
    verdicts = re.findall(verdict, done.stdout, re.M)
    assert len(verdicts) == 3


def test_the_demo_opens_on_a_day_with_visits(demo_run) -> None:
    """The UI shows the last partition first: it must hold real data, not an empty Sunday."""
    _, tmp_path = demo_run
    last = max((tmp_path / "data" / "appointments").iterdir())
    assert last.name.startswith("date=")
    assert pq.read_table(last / "part-0.parquet").num_rows > 0


@pytest.mark.parametrize(
    ("arguments", "variables", "named"),
    [
        (["--first", "yesterday"], {}, "DRCHRONO_START_DATE"),
        (["--first", "2023-12-01", "--last", "2023-12-05"], {}, "DRCHRONO_START_DATE"),
        ([], {"DRCHRONO_PAGE_SIZE": "0"}, "DRCHRONO_PAGE_SIZE"),
    ],
)
def test_the_demo_refuses_bad_input_in_one_line_before_it_starts(
    tmp_path: Path, arguments: list[str], variables: dict[str, str], named: str
) -> None:
    done = subprocess.run(
        [DRCHRONO_ASSETS, "demo", "--data-root", str(tmp_path / "data"),
         *arguments],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path), **variables},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and named in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "data").exists()


def test_the_demo_of_two_practices_connects_and_materializes_each_into_its_own_root(
    tmp_path: Path,
) -> None:
    """``demo --practices 2``: two DrchronoPractice components of one sandbox application,
    each connected by ``auth login`` and materialized into its own data root."""
    done = demo(tmp_path, "--practices", "2")
    rows = {
        name: (int(a), int(b))
        for name, a, b in re.findall(r"^  (\w+)\s+(\d+)\s+(\d+)$", done.stdout, re.M)
    }
    assert sorted(rows) == sorted([spec.name for spec in RESOURCES] + ["billing_report"])
    assert all(a > 0 and b > 0 for a, b in rows.values()), rows
    (requests,) = re.findall(r"by practice: clinic_a (\d+), clinic_b (\d+)", done.stdout)
    assert all(int(count) > 0 for count in requests)
    data = tmp_path / "data"
    for name, ids in (("clinic_a", range(ID_STEP)), ("clinic_b", range(ID_STEP, 2 * ID_STEP))):
        doctors = pq.read_table(data / name / "doctors", columns=["id"])["id"].to_pylist()
        assert doctors and all(doctor in ids for doctor in doctors), name
        tokens = tmp_path / ".dagster_home" / f"sandbox-tokens.{name}.json"
        assert tokens.exists(), name  # its own login, its own chain
