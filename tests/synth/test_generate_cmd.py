"""``crimelens generate``."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.synth import CHICAGO_COLUMNS

runner = CliRunner()


def test_generate_chicago_with_truth_and_json(tmp_path: Path) -> None:
    out, truth = tmp_path / "city.csv", tmp_path / "truth.json"
    res = runner.invoke(app, ["generate", "--out", str(out), "--incidents", "1500", "--days", "30", "--seed", "2",
                              "--truth", str(truth), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["out"] == str(out) and payload["incidents"] == 1500 and payload["format"] == "chicago"
    assert payload["seed"] == 2 and payload["dirt"] == {}
    frame = pd.read_csv(out, dtype=str)
    assert tuple(frame.columns) == CHICAGO_COLUMNS and len(frame) == 1500
    assert truth.exists() and (tmp_path / "truth.intensity.parquet").exists()


def test_generate_canonical_poisson_with_dirt(tmp_path: Path) -> None:
    out = tmp_path / "city.csv.gz"
    res = runner.invoke(app, ["generate", "--out", str(out), "--incidents", "2000", "--days", "20",
                              "--format", "canonical", "--kind", "poisson", "--dirt", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["dirt"]["duplicates"] > 0
    rows = len(pd.read_csv(out, dtype=str))
    assert rows == 2000 + payload["dirt"]["duplicates"] + payload["dirt"]["changed_duplicates"]


def test_generate_rejects_bad_options(tmp_path: Path) -> None:
    for extra in (["--format", "xml"], ["--kind", "lumpy"], ["--incidents", "0"], ["--start", "2022-02-31"]):
        res = runner.invoke(app, ["generate", "--out", str(tmp_path / "x.csv"), *extra])
        assert res.exit_code == 2, extra
        assert "error:" in res.output
