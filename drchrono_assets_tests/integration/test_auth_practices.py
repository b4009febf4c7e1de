"""Connecting the practices of a ``defs/`` folder: ``auth login NAME`` stores that practice's
tokens, ``auth status`` lists every practice and whether it is connected, never a secret."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import requests

from drchrono_assets_tests.support.login import AUTH
from drchrono_assets_tests.support.processes import subprocess_env
from drchrono_assets_tests.support.projects import write_project

pytestmark = pytest.mark.processes


def practices_env(sandbox_env: dict[str, str], tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The child's environment (no DRCHRONO_REFRESH_TOKEN: only logins connect), and the
    defs folder of a project with practices clinic_a and clinic_b."""
    project, package = write_project(
        tmp_path,
        {
            name: {"name": name, "base_url": sandbox_env["DRCHRONO_BASE_URL"], "data_root": "d"}
            for name in ("clinic_a", "clinic_b")
        },
    )
    env = subprocess_env(sandbox_env, tmp_path)
    env.pop("DRCHRONO_REFRESH_TOKEN", None)
    return env, project / package / "defs"


def test_login_of_a_practice_stores_its_own_tokens_and_status_lists_every_practice(
    quiet_sandbox, sandbox_env, tmp_path, start_login
) -> None:
    env, defs = practices_env(sandbox_env, tmp_path)
    login = start_login(env, "clinic_a", "--defs", str(defs))
    page = requests.get(login.authorize_url(), timeout=10)  # approved, through the sandbox
    assert page.status_code == 200
    returncode, stdout, stderr = login.finish()
    assert returncode == 0, stderr
    assert "Connected drchrono account for practice clinic_a" in stdout

    store = Path(env["DRCHRONO_TOKEN_STORE"])
    tokens = store.with_name(f"{store.stem}.clinic_a{store.suffix}")
    stored = json.loads(tokens.read_text())
    assert not store.exists()  # the practice's chain only: no other practice was touched

    status = subprocess.run(
        [*AUTH, "status", "--defs", str(defs)], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 1  # clinic_b is not connected
    assert "Practice clinic_a: connected" in status.stdout
    assert (
        "Practice clinic_b: not connected: run drchrono-assets auth login clinic_b" in status.stdout
    )
    output = stdout + stderr + status.stdout + status.stderr
    for secret in (stored["access_token"], stored["refresh_token"], env["DRCHRONO_CLIENT_SECRET"]):
        assert secret not in output


def test_login_of_an_unknown_practice_names_the_known_ones(sandbox_env, tmp_path) -> None:
    env, defs = practices_env(sandbox_env, tmp_path)
    done = subprocess.run(
        [*AUTH, "login", "clinic_c", "--defs", str(defs), "--no-browser"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "no practice is called 'clinic_c'" in done.stderr
    assert "clinic_a, clinic_b" in done.stderr and "Traceback" not in done.stderr
