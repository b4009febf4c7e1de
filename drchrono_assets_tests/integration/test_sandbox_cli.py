"""``python -m drchrono_sandbox`` as a process: it prints the exports a client needs, then
serves them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from drchrono_assets_tests.support.paths import REPO

pytestmark = pytest.mark.processes


def test_cli_prints_exports_and_serves() -> None:
    root = str(REPO)
    path = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": path}
    process = subprocess.Popen(
        [sys.executable, "-m", "drchrono_sandbox", "--port", "0", "--seed", "3",
         "--start", "2024-01-01", "--end", "2024-01-12", "--refresh-token", "cli-token",
         "--log-level", "warning"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        exports = dict(
            line.removeprefix("export ").strip().split("=", 1)
            for line in lines
            if line.startswith("export ")
        )
        assert set(exports) == {
            "DRCHRONO_BASE_URL",
            "DRCHRONO_CLIENT_ID",
            "DRCHRONO_CLIENT_SECRET",
            "DRCHRONO_REFRESH_TOKEN",
        }
        assert exports["DRCHRONO_REFRESH_TOKEN"] == "cli-token"
        base = exports["DRCHRONO_BASE_URL"]
        token = requests.post(
            f"{base}/o/token/",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "cli-token",
                "client_id": exports["DRCHRONO_CLIENT_ID"],
                "client_secret": exports["DRCHRONO_CLIENT_SECRET"],
            },
            timeout=5,
        )
        assert token.status_code == 200
        auth = {"Authorization": f"Bearer {token.json()['access_token']}"}
        doctors = requests.get(f"{base}/api/doctors", headers=auth, timeout=5)
        assert doctors.json()["count"] == 3
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
