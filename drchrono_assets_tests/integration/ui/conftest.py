"""The deployment the package's modules share: started once, stopped after its last test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drchrono_assets_tests.support.deployment import Deployment, deployed
from drchrono_sandbox import SandboxServer


@pytest.fixture(scope="package")
def deployment(
    sandbox: SandboxServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """``dagster-webserver`` and ``dagster-daemon`` on PostgreSQL, their code location loaded."""
    with deployed(sandbox, tmp_path_factory.mktemp("ui")) as running:
        yield running


@pytest.fixture(autouse=True)
def _logs_on_failure(request: pytest.FixtureRequest, deployment: Deployment) -> Iterator[None]:
    """The webserver's and daemon's logs under a failed test's report."""
    failed = request.session.testsfailed
    yield
    if request.session.testsfailed > failed:
        print(deployment.log_tails())
