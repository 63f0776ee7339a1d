"""Expected counts: calibrated p-values, honest prediction intervals, seasonality and weekdays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crimelens.alerts.expected import BaselineModel, PanelStats, expect, nb_survival
from crimelens.alerts.panel import CountPanel

from .conftest import START, SimCity, simulate


def _pool(city: SimCity, ends: range, model: BaselineModel) -> dict[str, np.ndarray]:
    st = PanelStats(city.panel)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("p", "obs", "lo", "hi", "exp", "truth")}
    for e in ends:
        ex = expect(st, e, 7, model)
        parts["p"].append(ex.p_value)
        parts["obs"].append(ex.observed)
        parts["lo"].append(ex.lower)
        parts["hi"].append(ex.upper)
        parts["exp"].append(ex.expected)
        parts["truth"].append(city.rate[:, e - 7:e].sum(axis=1))
    return {k: np.concatenate(v) for k, v in parts.items()}


def test_survival_matches_scipy() -> None:
    from scipy import stats

    y = np.array([0.0, 1, 3, 10, 25])
    r = np.full(5, 4.5)
    p = np.full(5, 0.7)
    assert np.allclose(nb_survival(y, r, p), stats.nbinom.sf(y - 1, r, p))


def test_p_values_are_valid_under_no_change(null_city: SimCity, overdispersed_city: SimCity) -> None:
    """P(p ≤ a) ≤ a (with sampling slack) for Poisson and clustered (gamma-Poisson) series."""
    for city in (null_city, overdispersed_city):
        got = _pool(city, range(200, 540, 5), BaselineModel())
        for a in (0.05, 0.01, 0.001):
            rate = float(np.mean(got["p"] <= a))
            slack = 3 * np.sqrt(a / got["p"].size)
            assert rate <= a + slack, (a, rate)


def test_poisson_model_is_too_confident_on_clustered_data(overdispersed_city: SimCity) -> None:
    """Ignoring overdispersion inflates small p-values; the negative binomial does not."""
    pois = _pool(overdispersed_city, range(200, 540, 5), BaselineModel(family="poisson"))
    nb = _pool(overdispersed_city, range(200, 540, 5), BaselineModel())
    assert np.mean(pois["p"] <= 0.01) > 2 * np.mean(nb["p"] <= 0.01)


def test_prediction_interval_covers_about_95_percent(overdispersed_city: SimCity) -> None:
    got = _pool(overdispersed_city, range(200, 540, 7), BaselineModel())
    inside = (got["obs"] >= got["lo"]) & (got["obs"] <= got["hi"])
    assert 0.93 <= float(np.mean(inside)) <= 0.995


def test_annual_seasonality_tracks_the_season() -> None:
    """With a strong annual cycle, the expected count follows it instead of the flat baseline."""
    city = simulate(5, n_areas=10, days=800, season_amp=0.6)
    model, flat = BaselineModel(), BaselineModel(seasonal=False)
    got = _pool(city, range(420, 790, 7), model)
    naive = _pool(city, range(420, 790, 7), flat)
    err = np.abs(got["exp"] - got["truth"]).sum()
    err_flat = np.abs(naive["exp"] - naive["truth"]).sum()
    assert err < 0.85 * err_flat


def test_weekday_profile_weights_short_windows() -> None:
    """A 2-day weekend window expects more than a 2-day mid-week one when weekends are busier."""
    keys = pd.DataFrame({"area": ["a"], "category": ["theft"]})
    days = 200
    rng = np.random.default_rng(0)
    dates = START + pd.to_timedelta(np.arange(days), unit="D")
    rate = np.where(dates.day_of_week >= 5, 12.0, 4.0)
    panel = CountPanel(keys, START, rng.poisson(rate)[None, :].astype(np.int64), area_level="district")
    st = PanelStats(panel)
    weekend_end = next(e for e in range(150, 170) if dates[e - 1].weekday() == 6)  # window Sat-Sun
    midweek_end = next(e for e in range(150, 170) if dates[e - 1].weekday() == 2)  # window Tue-Wed
    assert expect(st, weekend_end, 2, BaselineModel()).expected[0] > 2 * expect(st, midweek_end, 2,
                                                                                  BaselineModel()).expected[0]
