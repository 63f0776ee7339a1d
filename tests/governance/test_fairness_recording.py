"""BIA-04: on a synthetic city with equal true rates but biased recording, the audit detects
forecasts that track the recording bias, and passes the same forecasts on an unbiased twin."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.governance.fairness import GroupMembership, audit_selection
from crimelens.governance.recording_bias import TruthLayer, recording_bias_audit, synthetic_truth
from crimelens.synth import CityConfig, RecordingBias, SyntheticCity, generate_city

BIAS = RecordingBias(radius_m=2_500, inside=1.0, outside=0.5)  # the disc is recorded twice as often
ORIGIN = pd.Timestamp("2022-11-01", tz="UTC")
TOLERANCE = 0.1


def _city(bias: RecordingBias | None) -> SyntheticCity:
    return generate_city(CityConfig(n_incidents=20_000, days=365, seed=3, size_m=10_000, kind="poisson",
                                    recording_bias=bias))


@pytest.fixture(scope="module")
def biased() -> SyntheticCity:
    return _city(BIAS)


@pytest.fixture(scope="module")
def fair() -> SyntheticCity:
    return _city(None)


@pytest.fixture(scope="module")
def layer(biased: SyntheticCity) -> TruthLayer:
    return synthetic_truth(biased.truth)


def test_truth_layer_has_equal_true_rates(layer: TruthLayer) -> None:
    inten = layer.intensity[layer.cells]
    assert np.ptp(inten) / inten.mean() < 1e-6  # equal true rates in every unmixed cell
    share = layer.zone[layer.cells].mean()
    assert 0.1 < share < 0.3  # the disc: pi * 2.5^2 / 100 km2 ~ 0.2


@pytest.mark.parametrize("model", ["retro_count", "retro_kde"])
def test_audit_detects_over_selection_of_the_over_recorded_zone(biased: SyntheticCity, layer: TruthLayer,
                                                                model: str) -> None:
    surface = make(model, grid=biased.truth.grid).fit(biased.incidents, until=ORIGIN).predict(horizon="28d")
    for coverage in (0.05, 0.10):
        a = recording_bias_audit(surface.score, layer.intensity, layer.zone, cells=layer.cells,
                                 coverage=coverage, tolerance=TOLERANCE)
        assert a.truth_zone_share == pytest.approx(a.zone_area_share)  # equal rates: ties everywhere
        assert a.selected_zone_share > 0.9 and a.excess > 0.6 and a.lift > 4
        assert not a.passed and a.p_value < 1e-10
    doc = json.loads(a.to_json())
    assert doc["passed"] is False and doc["tolerance"] == TOLERANCE


def test_unbiased_twin_passes(fair: SyntheticCity, layer: TruthLayer) -> None:
    """Same seed and geography without the recording bias: the selection stays within tolerance."""
    surface = make("retro_count", grid=fair.truth.grid).fit(fair.incidents, until=ORIGIN).predict(horizon="28d")
    for coverage in (0.05, 0.10):
        a = recording_bias_audit(surface.score, layer.intensity, layer.zone, cells=layer.cells,
                                 coverage=coverage, tolerance=TOLERANCE)
        assert a.passed, a.to_dict()


def test_group_audit_against_true_need_flags_the_zone(biased: SyntheticCity, layer: TruthLayer) -> None:
    """The same finding through the general audit: groups = zone / rest, weighted by true crime."""
    surface = make("retro_count", grid=biased.truth.grid).fit(biased.incidents, until=ORIGIN).predict(horizon="28d")
    cells = layer.cells
    m = GroupMembership.from_labels(cells, np.where(layer.zone[cells], "zone", "rest"),
                                    population=layer.intensity[cells])
    audit = audit_selection(surface.score, m, coverage=0.05)
    by = {g.group: g for g in audit.groups}
    assert by["zone"].flag == "over" and by["rest"].flag == "under" and by["zone"].ratio > 4


def test_shapes_must_match() -> None:
    with pytest.raises(InputError):
        recording_bias_audit(np.ones(3), np.ones(4), np.zeros(3, bool), coverage=0.5)
