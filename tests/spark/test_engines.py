"""Same file, three engines, same answers: DuckDB, PostgreSQL (skipped when no server answers)
and Spark local[2] over a Parquet lake (skipped without Java or pyspark).

The Spark side runs the real commands (``crimelens ingest/info/trends/compstat/hotspots --engine
spark``) in this process, so they reuse the one test SparkSession. Compared: incidents,
quarantine, ``info``, weekly trends, CompStat and the Gi* class of every cell.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import TEST_KEY
from tests.spark.test_lake import _incidents, _info, _quarantine

pytestmark = pytest.mark.slow


def _pg_url() -> str | None:
    try:
        import psycopg

        from tests.service.conftest import PG_SERVER
    except ImportError:
        return None
    try:
        with psycopg.connect(PG_SERVER, connect_timeout=3):
            return PG_SERVER
    except psycopg.Error:
        return None


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, (args, res.output, res.exception)
    return res.stdout


@pytest.fixture(scope="module")
def stores(spark: Any, sample: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[str]]]:
    """``--db`` (and ``--engine``) arguments of the sample loaded on each engine."""
    root = tmp_path_factory.mktemp("engines")
    out: dict[str, list[str]] = {}
    duck = root / "d.duckdb"
    with connect(str(duck)) as s:
        ingest_file(s, sample, key=TEST_KEY)
    out["duckdb"] = ["--db", str(duck)]
    lake = f"lake:{root / 'lake'}"
    got = json.loads(_run("ingest", str(sample), "--db", lake, "--engine", "spark", "--json"))
    r = got[0] if isinstance(got, list) else got
    assert r["read"] == r["stored"] + r["updated"] + r["duplicates"] + r["quarantined"] and r["quarantined"] >= 2
    out["spark"] = ["--db", lake, "--engine", "spark"]
    out["lake-duckdb"] = ["--db", lake]  # a laptop opening what the cluster wrote
    server = _pg_url()
    schema = f"t_spark_{uuid.uuid4().hex[:10]}"
    if server is not None:
        url = f"{server}?schema={schema}"
        s = connect(url)
        ingest_file(s, sample, key=TEST_KEY)
        s.close()
        out["postgres"] = ["--db", url]
    yield out
    if server is not None:
        import psycopg

        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _open(args: list[str], spark: Any) -> Any:
    engine = args[3] if len(args) > 2 else "duckdb"
    return connect(args[1], read_only=True, engine=engine, spark=spark if engine == "spark" else None)


def _norm(df: pd.DataFrame) -> pd.DataFrame:
    """Values only: the drivers differ in how they type an all-null column (None, NaN, NaT)."""
    return df.astype(object).where(df.notna(), None)


def test_incidents_quarantine_info_are_equal(stores: dict[str, list[str]], spark: Any) -> None:
    ref = _open(stores["duckdb"], spark)
    want_inc, want_q = _norm(_incidents(ref)), _norm(_quarantine(ref))
    for name, args in stores.items():
        s = _open(args, spark)
        pd.testing.assert_frame_equal(_norm(_incidents(s)), want_inc, check_dtype=False, obj=name)
        pd.testing.assert_frame_equal(_norm(_quarantine(s)), want_q, check_dtype=False, obj=name)
        assert _info(s, "schema_version", "postgis") == _info(ref, "schema_version", "postgis"), name
        s.close()
    assert len(want_q) >= 2 and {"spark", "lake-duckdb"} <= set(stores)


def _cells(path: Path) -> list[tuple[str, ...]]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    keys = [k for k in rows[0] if k in ("cell_x", "cell_y", "cell_id", "unit", "class", "Gi_Bin", "count")]
    assert "class" in keys or "Gi_Bin" in keys
    return sorted(tuple(r[k] for k in keys) for r in rows)


def test_trends_compstat_gistar_are_equal(stores: dict[str, list[str]], tmp_path: Path, spark: Any) -> None:
    answers: dict[str, tuple[Any, ...]] = {}
    for name, args in stores.items():
        gi = tmp_path / f"gi-{name}.csv"
        s = _open(args, spark)
        weekly = s.counts(["week", "category"])  # the sample spans less than one whole week of trends
        s.close()
        trends = (json.loads(_run("trends", "--period", "day", "--json", *args)),
                  _norm(weekly.assign(week=weekly["week"].astype(str))).to_dict("records"))
        compstat = json.loads(_run("compstat", "--json", *args))
        hot = json.loads(_run("hotspots", "--method", "gistar", "--cell", "500", "--out", str(gi), "--json", *args))
        hot.pop("output", None)
        trends[0].pop("output", None)
        compstat.pop("output", None)
        answers[name] = (trends, compstat, hot, _cells(gi))
    ref = answers.pop("duckdb")
    assert ref[3], "Gi* produced no cells"
    for name, got in answers.items():
        for what, a, b in zip(("trends", "compstat", "gistar", "gistar cells"), got, ref, strict=True):
            assert a == b, f"{name} {what} differs from duckdb"


def test_evaluate_leaderboard_is_equal(stores: dict[str, list[str]], tmp_path: Path) -> None:
    """``forecast evaluate --engine spark``: the event table filtered and projected on Spark gives the
    very leaderboard the DuckDB file gives (the models and metrics run in the core on both)."""
    boards: dict[str, Any] = {}
    for name in ("duckdb", "lake-duckdb", "spark"):
        out = tmp_path / f"lb-{name}"
        _run("evaluate", "--models", "recent,retro_count", "--horizon", "1d", "--cell", "500",
             "--from", "2015-02-08", "--to", "2015-02-08", "--out", str(out), "--json", *stores[name])
        board = json.loads((out / "leaderboard.json").read_text())
        board.pop("generated_at", None)
        for by_cov in board["models"].values():  # wall-clock timings are the only thing allowed to differ
            for row in by_cov.values():
                row.pop("fit_s", None)
                row.pop("predict_s", None)
        boards[name] = board
    ref = boards.pop("duckdb")
    assert ref["models"] and ref["folds"], "the backtest scored nothing"
    for name, got in boards.items():
        diff = {k: (got.get(k), ref.get(k)) for k in ref if got.get(k) != ref.get(k)}
        assert not diff, f"{name} leaderboard differs from duckdb: {str(diff)[:3000]}"
