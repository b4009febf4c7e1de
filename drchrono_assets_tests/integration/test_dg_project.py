"""The project on Dagster's ``dg`` command line: ``dg check defs`` and ``dg list defs`` load
every practice of a ``defs/`` folder, ``dg launch`` materializes one practice's day."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import requests

from drchrono_assets_tests.support import processes
from drchrono_assets_tests.support.paths import PACKAGE, REPO
from drchrono_assets_tests.support.processes import BIN, subprocess_env
from drchrono_assets_tests.support.projects import write_project
from drchrono_assets_tests.support.resources import api_for
from drchrono_assets_tests.support.sandbox import fresh_refresh_token

pytestmark = pytest.mark.processes
DG = str(BIN / "dg")


def dg(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``dg ARGS`` in ``cwd``, failing the test with its output if it fails."""
    done = subprocess.run(
        [DG, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return done


def project_env(project: Path, tmp_path: Path, env: dict[str, str]) -> dict[str, str]:
    """A child's environment that imports the project's package."""
    path = os.pathsep.join(filter(None, [str(project), os.environ.get("PYTHONPATH")]))
    return {**subprocess_env(env, tmp_path), "PYTHONPATH": path, "HOME": str(tmp_path)}


def test_dg_checks_and_lists_every_practice_of_the_defs_folder(tmp_path, sandbox_env) -> None:
    project, _ = write_project(
        tmp_path,
        {
            "clinic_a": {"name": "clinic_a", "data_root": str(tmp_path / "a")},
            "clinic_b": {"name": "clinic_b", "data_root": str(tmp_path / "b")},
            "practice": None,
        },
    )
    env = project_env(project, tmp_path, sandbox_env)
    assert "All definitions loaded successfully" in dg(["check", "defs"], project, env).stdout
    listed = json.loads(dg(["list", "defs", "--json"], project, env).stdout)
    keys = {asset["asset_key"] for asset in listed["assets"]}
    assert {"clinic_a/appointments", "clinic_b/billing_report", "appointments"} <= keys
    sensors = {sensor["name"] for sensor in listed["sensors"]}
    assert {"clinic_a__drchrono_changes", "clinic_b__drchrono_changes", "drchrono_changes"} <= (
        sensors
    )


def test_the_package_is_a_dg_project_that_loads_as_before(tmp_path) -> None:
    """This repository: its one practice, of the DRCHRONO_* variables, keys unprefixed."""
    env = project_env(REPO, tmp_path, {})
    assert "All definitions loaded successfully" in dg(["check", "defs"], REPO, env).stdout
    keys = {
        asset["asset_key"]
        for asset in json.loads(dg(["list", "defs", "--json"], REPO, env).stdout)["assets"]
    }
    assert {"appointments", "billing_report", "ar_aging", "bi_duckdb"} <= keys
    assert not any("/" in key for key in keys)


def test_the_package_finds_its_practices_without_its_source_tree() -> None:
    """Installed into site-packages (a container image), there is no pyproject.toml above the
    package: dg.toml beside it names the same modules as [tool.dg.project]."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dg"]["project"]
    packaged = tomllib.loads((PACKAGE / "dg.toml").read_text())["project"]
    for field in ("root_module", "defs_module", "code_location_name"):
        assert packaged[field] == project[field], field


def test_an_installed_package_finds_its_practices(tmp_path) -> None:
    """``pip install .`` (a container image): no source tree above the package, dg.toml."""
    source, target = tmp_path / "source", tmp_path / "site-packages"
    source.mkdir()
    # The committed tree (a build in the checkout would leave build/ and *.egg-info there).
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout, check=True)
    install = ["install", "-q", "--no-deps", "--target", str(target), "."]
    pip = [str(BIN / "python"), "-m", "pip", *install]
    subprocess.run(pip, cwd=source, capture_output=True, check=True, timeout=600)
    probe = (
        "import drchrono_assets.definitions as d; "
        "print(d.__file__, len(list(d.defs.resolve_all_asset_keys())))"
    )
    env = {"PATH": str(BIN), "HOME": str(tmp_path), "PYTHONPATH": str(target)}
    done = subprocess.run(
        [str(BIN / "python"), "-c", probe], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    location, assets = done.stdout.split()
    assert location.startswith(str(target)) and int(assets) == 13


def test_dg_launch_materializes_a_day_of_one_practice(quiet_sandbox, sandbox_env, tmp_path) -> None:
    root = tmp_path / "clinic_a"
    store = str(tmp_path / "secrets" / "tokens.json")
    # Connected as `drchrono-assets auth login clinic_a` would leave it: the practice's tokens.
    grant = fresh_refresh_token(quiet_sandbox)
    api_for(
        sandbox_env, token_store=store, practice="clinic_a", refresh_token=grant
    ).client.current_user()
    project, _ = write_project(
        tmp_path,
        {
            "clinic_a": {
                "name": "clinic_a",
                "base_url": sandbox_env["DRCHRONO_BASE_URL"],
                "data_root": str(root),
            }
        },
    )
    env = project_env(project, tmp_path, {**sandbox_env, "DRCHRONO_TOKEN_STORE": store})
    env.pop("DRCHRONO_REFRESH_TOKEN")
    day = "2024-03-05"
    dg(
        ["launch", "--assets", "clinic_a/doctors,clinic_a/appointments", "--partition", day],
        project,
        env,
    )
    for name in ("doctors", "appointments"):
        assert pq.read_table(root / name / f"date={day}" / "part-0.parquet").num_rows > 0


def test_dg_dev_serves_every_practice(tmp_path) -> None:
    """``dg dev``: the webserver and daemon on the project, as ``dagster dev`` runs them."""
    project, _ = write_project(
        tmp_path,
        {"clinic_a": {"name": "clinic_a", "data_root": str(tmp_path / "a")}, "practice": None},
    )
    env = project_env(project, tmp_path, {})
    port, log = processes.free_port(), tmp_path / "dg-dev.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [DG, "dev", "-p", str(port)], cwd=project, env=env, stdout=output,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    query = {"query": "{ assetNodes { assetKey { path } } }"}

    def served() -> set[str] | None:
        try:
            answer = requests.post(f"http://127.0.0.1:{port}/graphql", json=query, timeout=5)
            nodes = answer.json()["data"]["assetNodes"]
        except (requests.RequestException, ValueError, KeyError, TypeError):
            return None
        return {"/".join(node["assetKey"]["path"]) for node in nodes} or None

    try:
        keys = processes.wait_for(
            "dg dev to serve the assets", served, 180, lambda: processes.tail(log)
        )
    finally:
        processes.stop(process)
    assert {"clinic_a/appointments", "clinic_a/billing_report", "appointments"} <= keys
