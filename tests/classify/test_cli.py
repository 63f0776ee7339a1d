"""``crimelens classify ...`` and ``crimelens anomalies`` end to end on a small ingested store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from crimelens.cli.classify_cmds import register
from tests.classify.conftest import TORONTO_CATEGORIES, synthetic_incidents
from tests.conftest import TEST_KEY

REVERSE = {v: k for k, v in TORONTO_CATEGORIES.items()}


def toronto_csv(path: Path, frame: pd.DataFrame) -> Path:
    local = frame["occurred_at"].dt.tz_convert("America/Toronto")
    day = local.dt.tz_localize(None).dt.normalize()
    pd.DataFrame({
        "occurrencedate": (day + pd.Timedelta(hours=5)).dt.strftime("%Y/%m/%d %H:%M:%S+00"),
        "occurrencehour": local.dt.hour, "premises_type": frame["premises"].str.title(),
        "occurrencemonth": local.dt.month_name(), "occurrencedayofweek": local.dt.day_name(),
        "MCI": frame["category"].map(REVERSE), "Neighbourhood": frame["neighbourhood"],
        "occurrenceday": local.dt.day, "occurrencedayofyear": local.dt.day_of_year,
        "Pub_Id": 0, "Park_Id": 0, "PS_Id": 0, "Lat": frame["lat"], "Long": frame["lon"],
    }).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from crimelens.ingest import ingest_file
    from crimelens.sources.mapping import load_preset
    from crimelens.store import connect

    tmp = tmp_path_factory.mktemp("stores")
    data = synthetic_incidents(2400, seed=5)
    data = data[data["category"] != "robbery"].reset_index(drop=True)  # three classes are enough here
    cut = int(len(data) * 0.75)
    out = []
    for name, part in (("train", data.iloc[:cut]), ("other", data.iloc[cut:])):
        db = tmp / f"{name}.duckdb"
        store = connect(str(db))
        try:
            ingest_file(store, toronto_csv(tmp / f"{name}.csv", part), key=TEST_KEY,
                        mapping=load_preset("toronto_mci"))
        finally:
            store.close()
        out.append(db)
    return out[0], out[1]


def run(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_train_evaluate_predict_explain(stores: tuple[Path, Path], tmp_path: Path) -> None:
    train_db, other_db = stores
    model = tmp_path / "m.joblib"
    code, out = run("classify", "train", "--db", str(train_db), "--out", str(model), "--json")
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["n_train"] > 1000 and set(summary["classes"]) == {"assault", "burglary", "vehicle_theft"}
    code, out = run("classify", "evaluate", "--model", str(model), "--db", str(other_db), "--json")
    assert code == 0, out
    report = json.loads(out.strip().splitlines()[-1])
    for key in ("log_loss", "macro_f1", "accuracy", "roc_auc_ovr"):
        assert key in report and key in report["baselines"]["prior"] and key in report["baselines"]["logistic"]
    assert report["log_loss"] < report["baselines"]["prior"]["log_loss"]
    code, out = run("classify", "predict", "--model", str(model), "--db", str(other_db), "--json", "--limit", "3")
    assert code == 0, out
    got = json.loads(out.strip().splitlines()[-1])
    rows = got["rows"]
    assert len(rows) == 3 and {"incident_id", "predicted", "p_assault"} <= set(rows[0]) and got["history"] is True
    code, out = run("classify", "predict", "--model", str(model), "--db", str(other_db), "--json", "--limit",
                    "200", "--no-history")
    frozen = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and frozen["history"] is False
    code, out = run("classify", "predict", "--model", str(model), "--db", str(other_db), "--json", "--limit", "200")
    live = json.loads(out.strip().splitlines()[-1])["rows"]
    # the store's own earlier incidents change the place-history features of later ones
    assert [r["incident_id"] for r in live] == [r["incident_id"] for r in frozen["rows"]]
    assert any(abs(a["p_assault"] - b["p_assault"]) > 1e-6 for a, b in zip(live, frozen["rows"], strict=True))
    code, out = run("classify", "explain", "--model", str(model), "--db", str(other_db), "--out-dir",
                    str(tmp_path / "ex"), "--incident", rows[0]["incident_id"], "--feature", "hour", "--json",
                    "--sample", "300")
    assert code == 0, out
    files = json.loads(out.strip().splitlines()[-1])["files"]
    assert all(Path(f).exists() for f in files) and any(f.endswith(".png") for f in files)


def test_bad_inputs_exit_with_one_line(stores: tuple[Path, Path], tmp_path: Path) -> None:
    code, out = run("classify", "evaluate", "--model", str(tmp_path / "none.joblib"), "--db", str(stores[1]))
    assert code == 2 and "no model file" in out
    code, out = run("classify", "train", "--db", str(stores[0]), "--out", str(tmp_path / "m"), "--model", "nope")
    assert code == 2 and "unknown model" in out


def test_anomalies(stores: tuple[Path, Path]) -> None:
    code, out = run("anomalies", "--db", str(stores[0]), "--top", "5", "--json")
    assert code == 0, out
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["flagged"] >= 1 and len(payload["top"]) == 5
    scores = [r["score"] for r in payload["top"]]
    assert scores == sorted(scores, reverse=True)


def test_backtest_retrains_per_block_and_reports_baselines(stores: tuple[Path, Path]) -> None:
    code, out = run("classify", "backtest", "--db", str(stores[0]), "--every", "60", "--test-fraction", "0.25",
                    "--json")
    assert code == 0, out
    payload = json.loads(out.strip().splitlines()[-1])
    assert len(payload["blocks"]) >= 3 and payload["notes"]["every"] == "60"
    assert payload["n"] == sum(b["n_test"] for b in payload["blocks"])
    assert payload["log_loss"] < payload["baselines"]["prior"]["log_loss"]
    code, out = run("classify", "backtest", "--db", str(stores[0]), "--every", "0")
    assert code == 2 and "positive" in out
