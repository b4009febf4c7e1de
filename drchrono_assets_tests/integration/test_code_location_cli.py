"""The code location as the Dagster CLI loads it: ``workspace.yaml`` validates, and a bad
setting stops it with the variable, its value and the range, in a child process."""

import subprocess

import pytest

from drchrono_assets_tests.support.paths import REPO
from drchrono_assets_tests.support.processes import BIN, DAGSTER

pytestmark = pytest.mark.processes


@pytest.mark.parametrize(
    "command",
    [
        ["dagster", "definitions", "validate", "-m", "drchrono_assets.definitions"],
        ["python", "-c", "import drchrono_assets.definitions"],
    ],
)
def test_a_bad_setting_stops_the_code_location_from_loading(tmp_path, command) -> None:
    """What an operator sees: the variable, its value and the allowed range, not pydantic's
    traceback naming the resource field."""
    done = subprocess.run(
        [str(BIN / command[0]), *command[1:]],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": str(BIN),
             "HOME": str(tmp_path), "DRCHRONO_PAGE_SIZE": "abc"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert (
        "DRCHRONO_PAGE_SIZE='abc' is not a whole number: set it to a whole number from 1 to 250"
        in output
    ), output[-3000:]
    assert "validation error for DrchronoApiResource" not in output


def test_workspace_loads_in_the_dagster_cli(tmp_path) -> None:
    done = subprocess.run(
        [DAGSTER, "definitions", "validate",
         "-w", "workspace.yaml"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": str(BIN)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr
