"""The DuckDB file for BI tools: views equal the Parquet files; the package's BI questions
are right, shown on the asset, and the README's copies equal them."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import dagster as dg
import duckdb
import pyarrow.dataset as ds
import pytest

from drchrono_assets.assets.bi import DATABASE_NAME
from drchrono_assets.assets.bi_questions import BI_QUESTIONS, BI_QUESTIONS_BY_NAME
from drchrono_assets.day_window import DayWindow
from drchrono_assets.io_managers import HiveParquetIOManager
from drchrono_assets_tests.support.billing_oracle import VISITS, line_owners
from drchrono_assets_tests.support.definitions import (
    ar_aging,
    bi_duckdb,
    billing_checks,
    billing_report,
    resource_assets,
)
from drchrono_assets_tests.support.paths import REPO
from drchrono_assets_tests.support.resources import api_for
from drchrono_assets_tests.support.sandbox import fresh_refresh_token

WINDOW = DayWindow(dt.date(2024, 3, 1), dt.date(2024, 3, 14))
README = REPO / "README.md"


def readme_queries() -> dict[str, str]:
    """The SQL of each block the README marks ``<!-- question: <name> -->``."""
    marked = re.findall(r"<!-- question: (\w+) -->\s*```sql\n(.*?)```", README.read_text(), re.S)
    return dict(marked)


def question(name: str) -> str:
    return BI_QUESTIONS_BY_NAME[name].sql


@pytest.fixture(scope="module")
def bi(sandbox, tmp_path_factory) -> dict[str, Any]:
    """Every asset for two weeks in one run; the DuckDB file and the raw sandbox data."""
    tmp = tmp_path_factory.mktemp("bi")
    env = {
        **sandbox.env(),
        "DRCHRONO_REFRESH_TOKEN": fresh_refresh_token(sandbox),
        "DRCHRONO_TOKEN_STORE": str(tmp / "secrets" / "tokens.json"),
    }
    io_manager = HiveParquetIOManager(data_root=str(tmp / "data"))
    result = dg.materialize(
        [*resource_assets, billing_report, ar_aging, bi_duckdb, *billing_checks],
        resources={"drchrono": api_for(env), "parquet_io_manager": io_manager},
        tags=WINDOW.run_tags,
    )
    assert result.success
    practice = sandbox.state.practice
    days = set(WINDOW.partition_keys)
    return {
        "db": duckdb.connect(str(tmp / "data" / DATABASE_NAME), read_only=True),
        "root": tmp / "data",
        "result": result,
        "transactions": [t for t in practice.transactions if t["date"][:10] in days],
        "appointments": [a for a in practice.appointments if a["scheduled_time"][:10] in days],
        "billed": {owner for day in days for owner in line_owners(sandbox, day).values()},
    }


def test_one_view_per_dataset_with_the_same_rows_as_the_parquet_files(bi) -> None:
    db, root = bi["db"], bi["root"]
    views = {
        row[0]
        for row in db.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    names = {spec.key.to_user_string() for spec in resource_assets} | {"billing_report", "ar_aging"}
    assert views == names
    for name in sorted(names):
        dataset = ds.dataset(root / name, format="parquet", partitioning="hive")
        assert db.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == dataset.count_rows(), (
            name
        )
    ids = sorted(r[0] for r in db.execute("SELECT id FROM appointments").fetchall())
    assert ids == sorted(a["id"] for a in bi["appointments"])
    days = {r[0] for r in db.execute("SELECT DISTINCT date FROM transactions").fetchall()}
    assert days == {dt.date.fromisoformat(t["date"][:10]) for t in bi["transactions"]}


def test_collections_per_doctor_per_month(bi) -> None:
    expected: dict[tuple[int, dt.date], Decimal] = defaultdict(Decimal)
    for line in bi["transactions"]:
        expected[(line["doctor"], dt.date(2024, 3, 1))] += Decimal(line["paid_total"])
    rows = bi["db"].execute(question("collections")).fetchall()
    assert {(doctor, month): collected for doctor, _, month, collected in rows} == expected
    assert all(name for _, name, _, _ in rows)


def test_unbilled_visits_last_week(bi) -> None:
    last = WINDOW.last
    expected = {
        (dt.date.fromisoformat(a["scheduled_time"][:10]), a["id"])
        for a in bi["appointments"]
        if a["status"] in VISITS
        and a["patient"] is not None
        and a["id"] not in bi["billed"]
        and dt.date.fromisoformat(a["scheduled_time"][:10]) > last - dt.timedelta(days=7)
    }
    rows = bi["db"].execute(question("unbilled")).fetchall()
    assert expected and {(day, appointment) for day, appointment, _, _ in rows} == expected


def test_denial_rate_by_procedure_code(bi) -> None:
    lines, denied = Counter(), Counter()
    for line in bi["transactions"]:
        lines[line["code"]] += 1
        denied[line["code"]] += line["denied_flag"]
    rows = bi["db"].execute(question("denials")).fetchall()
    assert {code: (n, d) for code, n, d, _ in rows} == {c: (lines[c], denied[c]) for c in lines}
    for _, n, d, rate in rows:
        # SQL round() is half away from zero, Python's round() half to even.
        exact = (Decimal(100 * d) / n).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
        assert Decimal(str(rate)) == exact
    assert any(d for _, _, d, _ in rows)


def test_the_readme_shows_the_packages_questions_exactly() -> None:
    assert readme_queries() == {q.name: q.sql for q in BI_QUESTIONS}


def test_the_ui_shows_the_questions_and_the_file_on_the_asset(bi) -> None:
    (materialized,) = [
        event
        for event in bi["result"].get_asset_materialization_events()
        if event.asset_key == bi_duckdb.key
    ]
    path = materialized.materialization.metadata["path"].value
    assert path == str((bi["root"] / DATABASE_NAME).resolve())
    shown = bi_duckdb.metadata_by_key[bi_duckdb.key]["bi_questions"].value
    for q in BI_QUESTIONS:
        assert f"**{q.title}**\n\n```sql\n{q.sql}```" in shown
    description = billing_report.descriptions_by_key[billing_report.key]
    assert "bi_duckdb" in description and "bi_questions" in description


def test_bi_database_needs_a_local_data_root() -> None:
    from drchrono_assets.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="needs a local DRCHRONO_DATA_ROOT"):
        dg.materialize(
            [bi_duckdb],
            resources={"parquet_io_manager": HiveParquetIOManager(data_root="memory://x")},
        )


def materialize_a_day_and_the_views(io_manager: HiveParquetIOManager, sandbox_env) -> None:
    """Appointments of 2024-03-05, then ar_aging (none yet) and the DuckDB views."""
    appointments = next(node for node in resource_assets if node.key.path == ["appointments"])
    assert dg.materialize(
        [appointments],
        resources={"drchrono": api_for(sandbox_env), "parquet_io_manager": io_manager},
        partition_key="2024-03-05",
    ).success
    assert dg.materialize(
        [ar_aging, bi_duckdb], resources={"parquet_io_manager": io_manager}
    ).success


def test_views_read_the_data_under_a_root_with_an_apostrophe(
    quiet_sandbox, sandbox_env, tmp_path
) -> None:
    root = tmp_path / "o'brien" / "data"
    materialize_a_day_and_the_views(HiveParquetIOManager(data_root=str(root)), sandbox_env)
    served = [
        a["id"]
        for a in quiet_sandbox.state.practice.appointments
        if a["scheduled_time"].startswith("2024-03-05")
    ]
    with duckdb.connect(str(root / DATABASE_NAME), read_only=True) as db:
        rows = db.execute("SELECT id, date FROM appointments").fetchall()
        assert db.execute("SELECT count(*) FROM ar_aging").fetchall() == [(0,)]
    assert served and sorted(rows) == sorted((id_, dt.date(2024, 3, 5)) for id_ in served)


def test_views_of_a_relative_data_root_work_from_any_folder(
    quiet_sandbox, sandbox_env, tmp_path, monkeypatch
) -> None:
    """The default data root is ``./data``: the file must not depend on where it is opened."""
    monkeypatch.chdir(tmp_path)
    materialize_a_day_and_the_views(HiveParquetIOManager(data_root="data"), sandbox_env)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with duckdb.connect(str(tmp_path / "data" / DATABASE_NAME), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM appointments").fetchall()[0][0] > 0
