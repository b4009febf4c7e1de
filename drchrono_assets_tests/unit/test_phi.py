"""No patient data, token or secret in Dagster events, metadata or logs."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import dagster as dg
from dagster_shared.serdes import serialize_value

from drchrono_assets_tests.support.assets import every_asset, materialize


def _phi_values(sandbox) -> set[str]:
    values = set()
    for patient in sandbox.state.practice.patients:
        values.add(f"{patient['first_name']} {patient['last_name']}")
        for field in (
            "social_security_number",
            "date_of_birth",
            "primary_insurance_id_number",
            "email",
        ):
            if patient.get(field):
                values.add(patient[field])
    return values


def test_no_phi_or_secret_in_events_metadata_or_logs(
    quiet_sandbox, dagster_resources, sandbox_env, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    instance = dg.DagsterInstance.ephemeral()
    # A run that includes retries and a failure, so warning and error paths are covered too.
    quiet_sandbox.state.faults.add(path_prefix="/api/patients", times=1, status=503)
    assert materialize(
        dagster_resources, "2024-03-04", "2024-03-06", instance=instance, assets=every_asset()
    ).success
    quiet_sandbox.state.faults.add(path_prefix="/api/appointments", times=1, malformed_page=True)
    materialize(dagster_resources, "2024-03-07", instance=instance, raise_on_error=False)

    text = [
        serialize_value(entry)
        for run in instance.get_runs()
        for entry in instance.all_logs(run.run_id)
    ]
    text.append(caplog.text)
    haystack = "\n".join(text)
    assert "retry 1" in haystack  # the warning path was exercised

    stored = json.loads(Path(sandbox_env["DRCHRONO_TOKEN_STORE"]).read_text())
    secrets = {
        sandbox_env["DRCHRONO_CLIENT_SECRET"],
        sandbox_env["DRCHRONO_REFRESH_TOKEN"],
        stored["access_token"],
        stored["refresh_token"],
    }
    leaked = {value for value in _phi_values(quiet_sandbox) | secrets if value in haystack}
    assert not leaked, f"{len(leaked)} PHI/secret values leaked"
