"""Fitted models save with metadata and reload for prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.forecast.persistence import data_hash, load_model, save_model
from crimelens.geo.grid import SquareGrid


@pytest.mark.parametrize("name", ["retro_count", "sepp", "gbm"])
def test_round_trip_predicts_the_same(name: str, tmp_path: Path, incidents: pd.DataFrame, grid: SquareGrid,
                                      origin: pd.Timestamp) -> None:
    params = {"n_estimators": 20, "max_origins": 6} if name == "gbm" else {}
    model = make(name, grid=grid, **params).fit(incidents, until=origin)
    path = save_model(model, tmp_path / "m.pkl", training=incidents, metrics={"pai_0.01": 3.2})
    again, meta = load_model(path)
    np.testing.assert_array_equal(again.predict(horizon="7d").score, model.predict(horizon="7d").score)
    assert meta["model"] == name
    assert meta["training_window"]["end"] == origin.isoformat()
    assert meta["data_sha256"] == data_hash(incidents)
    assert meta["metrics"] == {"pai_0.01": 3.2}
    assert json.loads((tmp_path / "m.pkl.json").read_text())["params"] == meta["params"]


def test_data_hash_ignores_row_order_but_not_content(incidents: pd.DataFrame) -> None:
    shuffled = incidents.sample(frac=1.0, random_state=0)
    assert data_hash(shuffled) == data_hash(incidents)
    changed = incidents.copy()
    changed.loc[0, "x"] += 1.0
    assert data_hash(changed) != data_hash(incidents)


def test_loading_something_else_fails(tmp_path: Path) -> None:
    import pickle

    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"format": "other"}))
    with pytest.raises(InputError):
        load_model(p)
