"""Shared fixture of the patrol tests: a generated city ingested into DuckDB."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app

runner = CliRunner()


@pytest.fixture(scope="session")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of a DuckDB store holding 6,000 incidents of a seeded synthetic city over 200 days."""
    root = tmp_path_factory.mktemp("patrol")
    city = root / "city.csv"
    path = str(root / "p.duckdb")
    r = runner.invoke(app, ["generate", "--out", str(city), "--incidents", "6000", "--days", "200", "--seed", "3"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["ingest", str(city), "--db", path, "--json"], env={"CRIMELENS_PSEUDONYM_KEY": "k" * 32})
    assert r.exit_code == 0, r.output
    return path
