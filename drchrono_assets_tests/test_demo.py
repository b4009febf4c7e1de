"""`make demo`'s program: a week of every asset from the sandbox, and where it went."""

import os
import re
import subprocess
import sys

from drchrono_assets.catalog import RESOURCES


def test_demo_materializes_a_week_of_every_asset_and_reports_rows(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "drchrono_assets.demo", "--data-root", str(tmp_path / "data")],
        cwd=tmp_path,
        env={**os.environ, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = dict(re.findall(r"^  (\w+)\s+(\d+) rows", done.stdout, re.M))
    names = [spec.name for spec in RESOURCES] + ["billing_report", "ar_aging"]
    assert sorted(rows) == sorted(names)
    assert all(int(rows[name]) > 0 for name in names)
    assert (tmp_path / "data" / "drchrono.duckdb").exists()
    assert re.search(r"with (\d+) API requests", done.stdout)
