"""The analysis commands on a real DuckDB store: counts pushed down, outputs written, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app

from .conftest import CRS, Cluster

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path, city: Callable[..., pd.DataFrame]) -> str:
    from crimelens.schema import PERSONAL_SCHEMA, QUARANTINE_SCHEMA, to_arrow
    from crimelens.store import connect
    from crimelens.store.base import IngestReport

    df = city(3, background=2500, clusters=[Cluster(1500, 1500, 120, 500)], days=500)
    df["category"] = np.where(np.arange(len(df)) % 3 == 0, "robbery", "burglary")
    df["category_group"] = np.where(df["category"] == "robbery", "violent", "property")
    df["district"] = np.where(df["x"] < df["x"].median(), "west", "east")
    path = str(tmp_path / "a.duckdb")
    store = connect(path)
    store.set_source_crs("test", CRS)
    with store.batch("test", "t.csv", "0" * 64, "b0") as w:
        w.add(to_arrow(df), PERSONAL_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
        w.commit(IngestReport(source="test", file="t.csv", sha256="0" * 64, batch_id="b0", read=len(df)))
    store.close()
    return path


def run(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_hotspots_gistar_json_summary_and_geojson(db: str, tmp_path: Path) -> None:
    out = tmp_path / "hot.geojson"
    res = run("hotspots", "--db", db, "--method", "gistar", "--cell", "200", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    summary = json.loads(res.stdout)  # type: ignore[attr-defined]
    assert summary["method"] == "gistar" and summary["classes"]["hot_99"] > 0
    assert sum(summary["classes"].values()) == summary["n_units"]
    gj = json.loads(out.read_text())
    props = gj["features"][0]["properties"]
    assert {"cell_id", "count", "z", "p", "class", "Gi_Bin"} <= set(props)
    assert sum(f["properties"]["count"] for f in gj["features"]) == summary["incidents"]


@pytest.mark.parametrize("method", ["kde", "lisa", "dbscan", "kmeans", "emerging", "hdbscan"])
def test_every_hotspot_method_writes_a_map(db: str, tmp_path: Path, method: str) -> None:
    out = tmp_path / f"{method}.png"
    res = run("hotspots", "--db", db, "--method", method, "--out", str(out), "--json", "--category", "burglary")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert json.loads(res.stdout)["method"] == method  # type: ignore[attr-defined]


def test_h3_units(db: str) -> None:
    res = run("hotspots", "--db", db, "--cell", "h3:9", "--json")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert json.loads(res.stdout)["units"].startswith("H3 resolution 9")  # type: ignore[attr-defined]


def test_trends_compstat_and_near_repeat(db: str, tmp_path: Path) -> None:
    res = run("trends", "--db", db, "--period", "month", "--json", "--out", str(tmp_path / "t.png"))
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    assert json.loads(res.stdout)["period"] == "month"  # type: ignore[attr-defined]
    res = run("trends", "--db", db, "--chart", "hour-weekday", "--json")
    assert json.loads(res.stdout)["incidents"] > 0  # type: ignore[attr-defined]
    res = run("compstat", "--db", db, "--by", "district", "--json", "--out", str(tmp_path / "c.csv"))
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    rows = json.loads(res.stdout)["rows"]  # type: ignore[attr-defined]
    assert {r["category"] for r in rows} == {"burglary", "robbery", "Total"}
    res = run("near-repeat", "--db", db, "--permutations", "19", "--json", "--from", "2023-01-01", "--to", "2023-07-01")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    nr = json.loads(res.stdout)  # type: ignore[attr-defined]
    assert 0 < nr["knox_p"] <= 1 and nr["parameters"]["n_permutations"] == 19


def test_bad_input_exits_with_one_line(db: str, tmp_path: Path) -> None:
    res = run("hotspots", "--db", db, "--method", "voronoi")
    assert res.exit_code == 2 and "method" in res.output  # type: ignore[attr-defined]
    res = run("hotspots", "--db", db, "--out", str(tmp_path / "x.shp"))
    assert res.exit_code == 2 and res.output.count("\n") == 1  # type: ignore[attr-defined]
    res = run("trends", "--db", db, "--period", "fortnight")
    assert res.exit_code == 2  # type: ignore[attr-defined]
    res = run("hotspots", "--db", db, "--category", "burglary", "--from", "2030-01-01")
    assert res.exit_code == 2 and "no located incidents" in res.output  # type: ignore[attr-defined]
