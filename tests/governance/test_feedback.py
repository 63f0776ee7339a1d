"""BIA-02: police-initiated incidents can be down-weighted or excluded before training, and the
urn simulation diverges without the guard and stays balanced with it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.governance.feedback import (
    UrnConfig,
    compare_guard,
    guard_incidents,
    police_initiated_mask,
    provenance_weights,
    simulate_urn,
)
from crimelens.synth import CityConfig, generate_city


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    city = generate_city(CityConfig(n_incidents=5_000, days=200, seed=8, size_m=8_000,
                                    category_shares={"drugs": 3.0}))
    return city.incidents


def test_guard_excludes_or_thins_police_initiated(incidents: pd.DataFrame) -> None:
    pi = (incidents["discovery"] == "police_initiated").to_numpy()
    assert pi.sum() > 200  # the synthetic city records drug and weapon finds as police-initiated
    assert police_initiated_mask(incidents).tolist() == pi.tolist()
    excluded = guard_incidents(incidents, police_initiated_weight=0.0)
    assert len(excluded) == (~pi).sum() and (excluded["discovery"] != "police_initiated").all()
    assert guard_incidents(incidents, police_initiated_weight=1.0) is incidents
    half = guard_incidents(incidents, police_initiated_weight=0.5, seed=1)
    kept = int((half["discovery"] == "police_initiated").sum())
    assert (half["discovery"] != "police_initiated").sum() == (~pi).sum()  # reported all kept
    assert abs(kept - 0.5 * pi.sum()) < 4 * np.sqrt(0.25 * pi.sum())
    assert guard_incidents(incidents, police_initiated_weight=0.5, seed=1).index.equals(half.index)
    w = provenance_weights(incidents, police_initiated_weight=0.25)
    assert set(np.unique(w)) == {0.25, 1.0} and (w[pi] == 0.25).all()


def test_retrained_model_ignores_excluded_incidents(incidents: pd.DataFrame) -> None:
    """A forecaster trained through the guard equals one trained on reported incidents only."""
    origin = pd.Timestamp("2022-07-01", tz="UTC")
    grid_model = make("retro_count", cell_size=250.0).fit(incidents, until=origin)
    grid = grid_model.grid_
    guarded = make("retro_count", grid=grid).fit(guard_incidents(incidents), until=origin).predict()
    reported = incidents[incidents["discovery"] != "police_initiated"]
    direct = make("retro_count", grid=grid).fit(reported, until=origin).predict()
    assert np.array_equal(guarded.score, direct.score)
    assert guarded.score.sum() < grid_model.predict().score.sum()


def test_mask_instead_of_a_provenance_column() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    with pytest.raises(InputError, match="mask"):
        guard_incidents(frame)
    out = guard_incidents(frame, mask=np.array([True, False, False]))
    assert out["x"].tolist() == [1.0, 2.0]
    with pytest.raises(InputError):
        provenance_weights(frame, mask=np.array([True]))
    with pytest.raises(InputError):
        provenance_weights(frame, police_initiated_weight=2.0, mask=np.zeros(3, bool))


def test_urn_naive_diverges_guarded_stays_balanced() -> None:
    """Two areas with equal true rates, patrols to the highest forecast (Ensign et al. 2018)."""
    result = compare_guard(UrnConfig(days=365, policy="max", seed=0), replications=20)
    naive, guarded = result["naive"], result["guarded"]
    # naive: one area takes every patrol for the second half-year and its forecast share runs away
    assert naive["patrol_share_top"]["min"] == 1.0
    assert naive["forecast_gap"]["min"] > 0.15
    # guarded: the forecast stays at the true 50/50 split
    assert guarded["forecast_gap"]["max"] < 0.05
    assert guarded["forecast_gap"]["mean"] < naive["forecast_gap"]["mean"] / 5


def test_urn_proportional_allocation_with_guard_balances_patrols() -> None:
    guarded = compare_guard(UrnConfig(policy="proportional", report_prob=0.1), replications=10)["guarded"]
    assert guarded["patrol_share_top"]["max"] < 0.56
    naive_only_found = compare_guard(UrnConfig(policy="proportional", report_prob=0.0), replications=10)["naive"]
    assert naive_only_found["forecast_gap"]["max"] > 0.2  # Pólya urn: a random, lopsided limit


def test_urn_is_seeded_and_validated() -> None:
    a, b = simulate_urn(seed=4), simulate_urn(seed=4)
    assert np.array_equal(a.patrol, b.patrol) and a.summary() == b.summary()
    assert a.patrol.shape == (365, 2) and np.allclose(a.patrol.sum(axis=1), 1.0)
    assert a.discovered.sum() > 0 and (a.discovered <= a.patrol * 1e9).all()  # only patrolled areas find crime
    with pytest.raises(InputError):
        UrnConfig(report_prob=1.5)
    with pytest.raises(InputError):
        UrnConfig(policy="random")  # type: ignore[arg-type]
