"""The ground truth object: shape of its tables, serialisation, and agreement with the config."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.synth import CityConfig, GroundTruth, SyntheticCity, generate_city
from crimelens.synth.codes import CATEGORY_NAMES


def test_intensity_table_shape(city: SyntheticCity) -> None:
    truth = city.truth
    inten = truth.intensity
    assert list(inten.columns) == ["cell_id", "week_start", "category", "expected", "background"]
    assert set(inten["category"].astype(str)) == {"all", *truth.intensity_categories}
    weeks = inten["week_start"]
    assert str(weeks.dt.tz) == "UTC" and (weeks.dt.day_of_week == 0).all() and (weeks.dt.hour == 0).all()
    assert inten["cell_id"].between(0, truth.grid.n_cells - 1).all()
    assert (inten["expected"] >= 0).all() and (inten["background"] <= inten["expected"] + 1e-12).all()
    per = inten.groupby(["category", "week_start"], observed=True).size()
    assert (per == truth.grid.n_cells).all()
    assert truth.grid.cell_of(city.incidents["x"].to_numpy(), city.incidents["y"].to_numpy()).min() >= 0


def test_expected_for_any_category_adds_up_to_all(city: SyntheticCity) -> None:
    total = sum(city.truth.expected(c)["expected"].sum() for c in CATEGORY_NAMES)
    assert np.isclose(total, city.truth.expected("all")["expected"].sum())
    with pytest.raises(InputError):
        city.truth.expected("assault")


def test_contagion_and_params_describe_the_config(city: SyntheticCity, poisson_city: SyntheticCity) -> None:
    c = city.truth.contagion
    assert c["branching_ratio"] == city.config.branching_ratio
    assert c["time_scale_days"] == city.config.contagion_days and c["distance_scale_m"] == city.config.contagion_m
    shares = city.truth.params["categories"]
    mean_theta = sum(shares[k]["share"] * c["by_category"][k] for k in CATEGORY_NAMES)
    assert np.isclose(mean_theta, city.config.branching_ratio)
    assert poisson_city.truth.contagion["branching_ratio"] == 0.0
    assert set(poisson_city.truth.contagion["by_category"].values()) == {0.0}
    p = city.truth.params
    assert p["n_incidents"] == len(city.incidents) and 0.95 < p["keep_fraction"] <= 1.0
    assert p["n_true_crimes"] == p["n_true_background"] + p["n_true_offspring"]
    json.dumps(p)  # JSON-able


def test_hotspots_and_cells(city: SyntheticCity) -> None:
    spots, cells = city.truth.hotspots, city.truth.hotspot_cells
    cfg = city.config
    assert spots["kind"].value_counts().to_dict() == {"persistent": cfg.n_hotspots, "street": cfg.n_street_hotspots,
                                                     "drifting": 1}
    assert set(cells["kind"]) == {"persistent", "street", "drifting"}
    assert cells["cell_id"].between(0, city.truth.grid.n_cells - 1).all() and (cells["lift"] >= 2).all()
    street = spots[spots["kind"] == "street"]
    assert street["sigma_m"].between(40, 70).all()
    assert (cells.groupby("hotspot_id").size()[street["hotspot_id"]] <= 12).all()  # street scale: a few cells
    cov = city.truth.covariates
    assert len(cov) == city.truth.grid.n_cells
    assert np.isclose(cov["residents"].sum(), 4_500 * 100)


def test_write_and_read_round_trip(small_city: SyntheticCity, tmp_path: Path) -> None:
    paths = small_city.truth.write(tmp_path / "truth.json")
    assert [p.name for p in paths] == ["truth.json", "truth.intensity.parquet"]
    doc = json.loads(paths[0].read_text())
    assert {"params", "grid", "hotspots", "hotspot_cells", "contagion", "covariates"} <= set(doc)
    back = GroundTruth.read(paths[0])
    assert back.params == json.loads(json.dumps(small_city.truth.params))
    assert back.grid == small_city.truth.grid
    pd.testing.assert_frame_equal(back.intensity, small_city.truth.intensity, check_categorical=False)
    pd.testing.assert_frame_equal(back.hotspot_cells, small_city.truth.hotspot_cells, check_dtype=False)
    assert back.expected("all")["expected"].sum() == pytest.approx(small_city.truth.intensity.query(
        "category == 'all'")["expected"].sum())
    json.loads(small_city.truth.to_json())


def test_truth_categories_option() -> None:
    c = generate_city(CityConfig(n_incidents=1_000, days=20, seed=1, size_m=4_000.0, truth_categories=("robbery",)))
    assert set(c.truth.intensity["category"].astype(str)) == {"all", "robbery"}
