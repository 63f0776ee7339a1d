"""Expected counts per series and window, with a predictive distribution and prediction interval.

For each series (area × category) and a window of ``W`` days, the expected count comes from the
same series' recent history (a baseline of ``B`` days before the window, optionally separated by a
guard gap) scaled by two profiles estimated city-wide per category, where data are plentiful:

* **day of week** -- the share of incidents on each weekday (shrunk towards the all-category
  profile for rare categories), so a 3-day window over a weekend expects more than one mid-week;
* **annual seasonality** -- when earlier years are in the panel, the ratio of the rate in the
  window's season to the rate in the baseline's season one, two and three years (52, 104, 156
  weeks) earlier, so a summer rise that happens every year is not an alert.

Uncertainty. With ``X`` incidents in the baseline exposure ``B'`` and window exposure ``W'``
(days weighted by the profiles), a Poisson rate with a Jeffreys Gamma(½) prior gives the
predictive distribution of the window count as negative binomial with mean
``μ = (X + ½) W'/B'`` and size ``X + ½`` -- Poisson noise plus the uncertainty of the baseline
estimate (the classic comparison of two Poisson rates). Overdispersion (contagion, near repeats,
reporting batches) is measured per category as a negative binomial dispersion ``α``
(``Var = μ + α μ²``) of window-length blocks over the last half year, estimated by moments
pooled over the category's series. The predictive distribution is then the negative binomial with the same mean
and the variance of both sources, ``Var(Y) = μ + μ² (α (1 + W'/B') + 1/(X + ½))``, i.e. size
``k = 1/(α (1 + W'/B') + 1/(X + ½))``: a moment-matched form of the negative binomial
thresholds of Farrington et al. (1996) and Noufaily et al. (2013). ``family="poisson"`` forces
``α = 0``; ``"negbin"`` and ``"auto"`` estimate it.

The one-sided p-value ``P(Y ≥ y)`` is the regularised incomplete beta function
``I_{1−p}(y, k)``. The mid-p value gives a probability-integral-transform normal score per window,
which the control charts use.

References
----------
Farrington, C. P., Andrews, N. J., Beale, A. D. & Catchpole, M. A. (1996). A statistical algorithm
for the early detection of outbreaks of infectious disease. *JRSS A* 159(3), 547-563.
Noufaily, A. et al. (2013). An improved algorithm for outbreak detection in multiple surveillance
systems. *Statistics in Medicine* 32(7), 1206-1222.
Przyborowski, J. & Wileński, H. (1940). Homogeneity of results in testing samples from Poisson
series. *Biometrika* 31, 313-323 (the conditional comparison of two Poisson counts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats

from crimelens.alerts.panel import CountPanel
from crimelens.exceptions import InputError

FloatArray = npt.NDArray[np.float64]
Family = Literal["auto", "poisson", "negbin"]
_YEAR = 364  # 52 weeks: the same weekdays a year earlier


@dataclass(frozen=True, kw_only=True)
class BaselineModel:
    """How expected counts are computed.

    Parameters
    ----------
    baseline_days
        Days of history before the window (plus ``guard_days``) that set the level.
    guard_days
        Days between the baseline and the window, so a slowly building rise is not absorbed.
    family
        ``auto``/``negbin`` estimate overdispersion per category; ``poisson`` assumes none.
    weekday, seasonal
        Use the day-of-week profile / the annual seasonal ratio from earlier years.
    prior
        Shape of the Gamma prior on the rate (½ = Jeffreys).
    interval
        Central coverage of the prediction interval.
    max_dispersion
        Cap on the estimated negative binomial dispersion ``α``.
    dispersion_days
        Days of history before the window from which ``α`` is estimated (at least the baseline).
    min_baseline_days
        Windows with less history than this are not tested.
    """

    baseline_days: int = 56
    guard_days: int = 0
    family: Family = "auto"
    weekday: bool = True
    seasonal: bool = True
    prior: float = 0.5
    interval: float = 0.95
    max_dispersion: float = 2.0
    dispersion_days: int = 182
    min_baseline_days: int = 28

    def __post_init__(self) -> None:
        if self.baseline_days < 7 or self.guard_days < 0 or self.min_baseline_days < 7:
            raise InputError("baseline_days and min_baseline_days must be at least 7 and guard_days >= 0")
        if self.family not in ("auto", "poisson", "negbin"):
            raise InputError(f"family must be auto, poisson or negbin, got {self.family!r}")
        if not 0 < self.interval < 1 or self.prior <= 0 or self.max_dispersion < 0:
            raise InputError("interval must be in (0, 1), prior positive and max_dispersion >= 0")


class PanelStats:
    """Cumulative sums of a panel, computed once so that many windows are cheap to evaluate."""

    def __init__(self, panel: CountPanel) -> None:
        self.panel = panel
        counts = panel.counts.astype(np.float64)
        self.csum = np.zeros((panel.n_series, panel.n_days + 1))
        np.cumsum(counts, axis=1, out=self.csum[:, 1:])
        self.categories = panel.categories()
        cat_pos = {c: i for i, c in enumerate(self.categories)}
        self.cat_of = np.array([cat_pos[c] for c in panel.keys["category"]], dtype=np.int64)
        totals = np.zeros((len(self.categories), panel.n_days))
        np.add.at(totals, self.cat_of, counts)
        self.cat_csum = np.zeros((len(self.categories), panel.n_days + 1))
        np.cumsum(totals, axis=1, out=self.cat_csum[:, 1:])
        self.totals = totals
        self.weekday = np.asarray(panel.days.day_of_week, dtype=np.int64)
        #: Normal scores of past windows by (end, window_days, model), shared by rolling scans.
        self.score_cache: dict[tuple[int, int, BaselineModel], FloatArray] = {}

    def refresh(self, rows: npt.NDArray[np.int64]) -> PanelStats:
        """Bring the sums up to date after the panel changed in ``rows``.

        Recomputes only those rows (and their categories' totals) when the panel kept its shape
        and categories; rebuilds everything otherwise. Returns the up-to-date statistics.
        """
        panel = self.panel
        if self.csum.shape != (panel.n_series, panel.n_days + 1) or panel.categories() != self.categories:
            return PanelStats(panel)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return self
        self.score_cache.clear()
        self.csum[rows, 1:] = np.cumsum(panel.counts[rows].astype(np.float64), axis=1)
        for c in np.unique(self.cat_of[rows]):
            members = self.cat_of == c
            self.totals[c] = panel.counts[members].sum(axis=0)
            self.cat_csum[c, 1:] = np.cumsum(self.totals[c])
        return self

    def window_sum(self, lo: int, hi: int) -> FloatArray:
        """Per-series sum over days ``[lo, hi)`` (clipped to the panel)."""
        lo, hi = max(lo, 0), min(hi, self.panel.n_days)
        return self.csum[:, hi] - self.csum[:, lo] if hi > lo else np.zeros(self.panel.n_series)

    def cat_sum(self, lo: int, hi: int) -> FloatArray:
        """Per-category sum over days ``[lo, hi)`` (clipped)."""
        lo, hi = max(lo, 0), min(hi, self.panel.n_days)
        return self.cat_csum[:, hi] - self.cat_csum[:, lo] if hi > lo else np.zeros(len(self.categories))


@dataclass(frozen=True, eq=False)
class Expectation:
    """Observed and expected counts of every series over one window, with the test results."""

    window_start: pd.Timestamp
    window_end: pd.Timestamp
    observed: FloatArray
    expected: FloatArray
    lower: FloatArray
    upper: FloatArray
    p_value: FloatArray
    mid_p: FloatArray
    dispersion: FloatArray
    baseline: FloatArray
    season: FloatArray
    testable: npt.NDArray[np.bool_]

    @property
    def score(self) -> FloatArray:
        """Normal score of each window count (probability integral transform of the mid-p)."""
        return np.asarray(-special.ndtri(np.clip(self.mid_p, 1e-300, 1.0)), dtype=np.float64)

    def columns(self) -> dict[str, npt.NDArray[np.generic]]:
        """The per-series arrays by name."""
        return {"observed": self.observed, "expected": self.expected, "lower": self.lower, "upper": self.upper,
                "p_value": self.p_value, "mid_p": self.mid_p, "dispersion": self.dispersion, "baseline": self.baseline,
                "season": self.season, "testable": self.testable}

    def to_frame(self, keys: pd.DataFrame) -> pd.DataFrame:
        """One row per series."""
        return pd.DataFrame({"area": keys["area"].to_numpy(object), "category": keys["category"].to_numpy(object),
                             "window_start": self.window_start, "window_end": self.window_end, **self.columns()})


def weekday_profile(stats_: PanelStats, lo: int, hi: int) -> FloatArray:
    """Day-of-week factors ``(category, 7)`` with mean 1 from days ``[lo, hi)``.

    Each category's profile is shrunk towards the all-category one with weight ``n / (n + 200)``.
    """
    lo, hi = max(lo, 0), min(hi, stats_.panel.n_days)
    n_cat = len(stats_.categories)
    if hi - lo < 14:
        return np.ones((n_cat, 7))
    wd = stats_.weekday[lo:hi]
    days_per = np.bincount(wd, minlength=7).astype(np.float64)
    by_day = np.zeros((n_cat, 7))
    for d in range(7):
        by_day[:, d] = stats_.totals[:, lo:hi][:, wd == d].sum(axis=1)
    rate = by_day / np.maximum(days_per, 1.0)
    overall = rate.sum(axis=0)
    pooled = overall / overall.mean() if overall.mean() > 0 else np.ones(7)
    mean = rate.mean(axis=1, keepdims=True)
    own = np.divide(rate, mean, out=np.ones_like(rate), where=mean > 0)
    n = by_day.sum(axis=1, keepdims=True)
    w = n / (n + 200.0)
    prof = w * own + (1 - w) * pooled
    return np.asarray(prof / prof.mean(axis=1, keepdims=True), dtype=np.float64)


def season_ratio(stats_: PanelStats, w_lo: int, w_hi: int, b_lo: int, b_hi: int, *, years: int = 3,
                 widen: int = 7, pseudo: float = 5.0) -> FloatArray:
    """Per category, rate in the window's season over rate in the baseline's season, from earlier years.

    Uses the same periods 52, 104, 156 weeks earlier (the window widened by ``widen`` days each
    side for stability), pooled and shrunk towards 1 by ``pseudo`` incidents; clipped to [⅓, 3].
    Returns ones when no earlier year is fully in the panel.
    """
    n_cat = len(stats_.categories)
    num, den, lw, lb = np.zeros(n_cat), np.zeros(n_cat), 0.0, 0.0
    for k in range(1, years + 1):
        off = k * _YEAR
        if b_lo - off < 0:
            break
        num += stats_.cat_sum(w_lo - off - widen, w_hi - off + widen)
        den += stats_.cat_sum(b_lo - off, b_hi - off)
        lw += (w_hi - w_lo) + 2 * widen
        lb += b_hi - b_lo
    if lw == 0:
        return np.ones(n_cat)
    scale = (den / lb) * lw  # expected window-season count at the baseline-season rate
    ratio = (num + pseudo) / (scale + pseudo)
    return np.asarray(np.clip(ratio, 1 / 3, 3.0), dtype=np.float64)


def dispersion(stats_: PanelStats, b_lo: int, b_hi: int, block: int, cap: float) -> FloatArray:
    """Per-category negative binomial dispersion ``α`` (``Var = μ + α μ²``) of ``block``-day baseline counts.

    Method of moments pooled over the category's series: ``α = Σ J (s² − m) / Σ J m²`` with ``m``
    and ``s²`` each series' mean and unbiased variance over its ``J`` blocks; clipped to
    ``[0, cap]``. Returns zeros when the baseline holds fewer than two blocks.
    """
    n_cat = len(stats_.categories)
    blocks = (b_hi - b_lo) // block
    if blocks < 2:
        return np.zeros(n_cat)
    edges = b_hi - block * blocks + block * np.arange(blocks + 1)
    counts = np.diff(stats_.csum[:, edges], axis=1)  # (series, blocks)
    mean = counts.mean(axis=1)
    var = counts.var(axis=1, ddof=1)
    num = np.bincount(stats_.cat_of, weights=blocks * (var - mean), minlength=n_cat)
    den = np.bincount(stats_.cat_of, weights=blocks * mean**2, minlength=n_cat)
    alpha = np.divide(num, den, out=np.zeros(n_cat), where=den > 0)
    return np.asarray(np.clip(alpha, 0.0, cap), dtype=np.float64)


def nb_survival(y: FloatArray, r: FloatArray, p: FloatArray) -> FloatArray:
    """``P(Y ≥ y)`` for ``Y ~ NB(r, p)`` (failures before the r-th success), real-valued ``y ≥ 0``."""
    y = np.asarray(y, dtype=np.float64)
    out = np.ones_like(y)
    pos = y > 0
    out[pos] = special.betainc(y[pos], r[pos], (1.0 - p)[pos])
    return out


@dataclass(frozen=True, eq=False)
class WindowParams:
    """Category-level parts of an expectation (profiles, seasonal ratio, dispersion) for one window.

    They depend only on history before the window, so incremental re-evaluation of a few series
    reuses them until the window moves.
    """

    end: int
    window_days: int
    w_lo: int
    b_lo: int
    b_hi: int
    w_exposure: FloatArray
    b_exposure: FloatArray
    season: FloatArray
    alpha: FloatArray
    testable: bool


def window_params(panel_stats: PanelStats, end: int, window_days: int, model: BaselineModel) -> WindowParams:
    """Compute the category-level parameters of the window ``[end - window_days, end)``."""
    panel = panel_stats.panel
    if window_days < 1:
        raise InputError("window_days must be at least 1")
    if not 0 < end <= panel.n_days:
        raise InputError(f"window end is outside the panel ({panel.start:%Y-%m-%d} to {panel.end:%Y-%m-%d})")
    n_cat = len(panel_stats.categories)
    w_lo = end - window_days
    b_hi = w_lo - model.guard_days
    b_lo = max(b_hi - model.baseline_days, 0)
    if model.weekday:
        prof = weekday_profile(panel_stats, b_hi - _YEAR, b_hi)
        wd = panel_stats.weekday
        w_exp = prof[:, wd[max(w_lo, 0):end]].sum(axis=1)
        b_exp = prof[:, wd[b_lo:b_hi]].sum(axis=1) if b_hi > b_lo else np.zeros(n_cat)
    else:
        w_exp = np.full(n_cat, float(end - max(w_lo, 0)))
        b_exp = np.full(n_cat, float(max(b_hi - b_lo, 0)))
    season = season_ratio(panel_stats, w_lo, end, b_lo, b_hi) if model.seasonal else np.ones(n_cat)
    d_lo = max(b_hi - max(model.dispersion_days, b_hi - b_lo), 0)
    block = window_days if (b_hi - d_lo) // window_days >= 4 else 7
    alpha = np.zeros(n_cat) if model.family == "poisson" else dispersion(panel_stats, d_lo, b_hi, block,
                                                                         model.max_dispersion)
    alpha = alpha * block / window_days  # short-range clustering: α scales inversely with the length
    return WindowParams(end=end, window_days=window_days, w_lo=w_lo, b_lo=b_lo, b_hi=b_hi,
                        w_exposure=w_exp * season, b_exposure=np.maximum(b_exp, 1e-9), season=season,
                        alpha=alpha, testable=b_hi - b_lo >= model.min_baseline_days and w_lo >= 0)


def expect(panel_stats: PanelStats, end: int, window_days: int, model: BaselineModel, *,
           params: WindowParams | None = None, rows: npt.NDArray[np.int64] | None = None,
           interval: bool = True) -> Expectation:
    """Expected counts and one-sided p-values for the window ``[end - window_days, end)`` (day indices).

    ``params`` reuses category-level parameters computed earlier for the same window; ``rows``
    evaluates only those series (the arrays then follow ``rows``); ``interval=False`` skips the
    prediction interval (``nan``), which is the slow part. Series whose baseline is
    shorter than ``model.min_baseline_days`` get ``p = 1`` and ``testable = False``.
    """
    panel = panel_stats.panel
    wp = params if params is not None else window_params(panel_stats, end, window_days, model)
    idx = np.arange(panel.n_series) if rows is None else np.asarray(rows, dtype=np.int64)
    observed = panel_stats.window_sum(wp.w_lo, wp.end)[idx]
    base = panel_stats.window_sum(wp.b_lo, wp.b_hi)[idx]
    cat = panel_stats.cat_of[idx]
    w_eff, b_eff, alpha = wp.w_exposure[cat], wp.b_exposure[cat], wp.alpha[cat]
    expected = (base + model.prior) * w_eff / b_eff
    size = 1.0 / (alpha * (1.0 + w_eff / b_eff) + 1.0 / (base + model.prior))
    prob = size / (size + expected)
    p_ge = nb_survival(observed, size, prob)
    p_gt = nb_survival(observed + 1, size, prob)
    if interval:
        tail = (1 - model.interval) / 2
        lower = np.asarray(stats.nbinom.ppf(tail, size, prob), float)
        upper = np.asarray(stats.nbinom.ppf(1 - tail, size, prob), float)
    else:
        lower = upper = np.full(len(idx), np.nan)
    testable = np.full(len(idx), wp.testable)
    return Expectation(
        window_start=panel.day_at(wp.w_lo), window_end=panel.day_at(wp.end),
        observed=observed, expected=expected, lower=lower, upper=upper,
        p_value=np.where(testable, p_ge, 1.0), mid_p=np.where(testable, 0.5 * (p_ge + p_gt), 0.5),
        dispersion=alpha, baseline=base, season=wp.season[cat], testable=testable,
    )
