"""Rolling-origin backtest: each block is classified by a model that never saw its labels."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest

from crimelens.classify import IncidentClassifier
from crimelens.classify.backtest import block_starts, rolling_backtest
from crimelens.exceptions import InputError
from tests.classify.conftest import synthetic_incidents

FAST = {"n_estimators": 40, "num_leaves": 15, "learning_rate": 0.2}


class SpyClassifier(IncidentClassifier):
    """Records the latest training incident of every fit."""

    fits: ClassVar[list[pd.Timestamp]] = []

    def fit(self, incidents: pd.DataFrame, y: Any = None) -> SpyClassifier:
        SpyClassifier.fits.append(pd.to_datetime(incidents["occurred_at"], utc=True).max())
        super().fit(incidents, y)
        return self


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    return synthetic_incidents(2500, seed=11)


def test_each_block_is_trained_only_on_earlier_incidents(incidents: pd.DataFrame) -> None:
    SpyClassifier.fits.clear()
    res = rolling_backtest(SpyClassifier(params=FAST), incidents, test_fraction=0.3, every=60)
    starts = [pd.Timestamp(b.start) for b in res.blocks]
    assert len(starts) == len(SpyClassifier.fits) >= 3
    assert all(fit < start for fit, start in zip(SpyClassifier.fits, starts, strict=True))
    assert [b.n_train for b in res.blocks] == sorted(b.n_train for b in res.blocks)  # an expanding window
    n_test = round(len(incidents) * 0.3)
    assert sum(b.n_test for b in res.blocks) == res.report.model.n == n_test
    assert all(np.diff([s.value for s in starts]) == pd.Timedelta(days=60).value)
    payload = res.to_dict()
    for key in ("log_loss", "macro_f1", "accuracy", "roc_auc_ovr"):
        assert key in payload and key in payload["baselines"]["prior"] and key in payload["baselines"]["logistic"]
    assert len(payload["blocks"]) == len(starts)


def test_rewriting_later_labels_leaves_earlier_blocks_unchanged(incidents: pd.DataFrame) -> None:
    est = IncidentClassifier(params=FAST)
    base = rolling_backtest(est, incidents, test_fraction=0.3, every=60, logistic=False)
    cut = pd.Timestamp(base.blocks[-1].start)
    flipped = incidents.copy()
    later = pd.to_datetime(flipped["occurred_at"], utc=True) >= cut
    flipped.loc[later, "category"] = np.roll(flipped.loc[later, "category"].to_numpy(), 1)
    moved = rolling_backtest(est, flipped, test_fraction=0.3, every=60, logistic=False)
    for a, b in zip(base.blocks[:-1], moved.blocks[:-1], strict=True):
        assert a.log_loss == pytest.approx(b.log_loss, abs=1e-12)
    assert base.blocks[-1].log_loss != pytest.approx(moved.blocks[-1].log_loss, abs=1e-6)


def test_retraining_follows_a_shifting_mix_better_than_one_frozen_model() -> None:
    rng = np.random.default_rng(2)
    n = 4000
    t = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, 730, n)), unit="D")
    share = np.linspace(0.1, 0.9, n)  # burglary's share grows steadily
    frame = pd.DataFrame({"occurred_at": t, "category": np.where(rng.random(n) < share, "burglary", "assault"),
                          "lat": 43.7 + rng.normal(0, 0.01, n), "lon": -79.4 + rng.normal(0, 0.01, n)})
    # no time features and no calibration: only what each block's training set holds moves the mix
    est = IncidentClassifier(params=FAST, context=False, profile=False, features=["x", "y"], validation_fraction=0.0)
    frozen = rolling_backtest(est, frame, test_fraction=0.4, every=10_000, logistic=False)
    rolling = rolling_backtest(est, frame, test_fraction=0.4, every=30, logistic=False)
    assert len(frozen.blocks) == 1 and len(rolling.blocks) > 8
    assert rolling.report.model.log_loss < frozen.report.model.log_loss - 0.03


def test_bad_arguments() -> None:
    frame = synthetic_incidents(300, seed=1)
    with pytest.raises(InputError, match="positive"):
        block_starts(frame["occurred_at"], 0)
    for bad in ("inf", "nan", -3):
        with pytest.raises(InputError, match="positive"):
            block_starts(frame["occurred_at"], bad)
    with pytest.raises(InputError, match="number of days"):
        block_starts(frame["occurred_at"], "fortnightly")
    with pytest.raises(InputError, match="no training"):
        rolling_backtest(IncidentClassifier(params=FAST), frame, test_start="1990-01-01")
    with pytest.raises(InputError, match="between 0 and 1"):
        rolling_backtest(IncidentClassifier(params=FAST), frame, test_fraction=1.5)


def test_calendar_blocks_start_on_the_first_of_each_month() -> None:
    t = pd.Series(pd.date_range("2021-01-10 05:00", "2021-04-20", freq="6h", tz="UTC"))
    starts = block_starts(t, "month")
    assert starts[0] == t.min()
    assert [s.strftime("%Y-%m-%d %H:%M") for s in starts[1:]] == ["2021-02-01 00:00", "2021-03-01 00:00",
                                                                 "2021-04-01 00:00"]
    assert len(block_starts(t, "quarter")) == 2 and len(block_starts(t, "30")) == 4
