"""Spike detection across all areas × categories × windows, with control of multiple testing.

A scan compares the count of every series in the window(s) ending at ``end`` with its expected
count (:mod:`crimelens.alerts.expected`) and decides which rises are real:

* ``method="nb"`` (default): the one-sided predictive negative binomial p-value of each window;
* ``method="ewma"``: the p-value of an EWMA over the last ``history_windows`` windows' normal
  scores (sustained moderate rises);
* ``method="cusum"``: a CUSUM over the same scores against a threshold calibrated for the
  whole family (``ARL₀ = m/α``);

The STL residual score (:mod:`crimelens.alerts.stl`) of each alerted series is attached as
further evidence. It is not offered as a decision rule: on series with no change its spread is
well above the nominal standard normal (the end-of-series trend is uncertain), so thresholds on
it would not be calibrated.

p-values of all comparisons (series × window lengths) go through Benjamini–Hochberg at ``fdr``
(or Benjamini–Yekutieli / Bonferroni), and an alert also needs at least ``min_observed``
incidents and ``observed ≥ min_ratio × expected``. Every comparison is kept in
:attr:`ScanResult.tests` with all scores, so each alert can be explained and every parameter
that shaped it is in :attr:`ScanResult.params`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats as sps

from crimelens.alerts.control import cusum, ewma, family_cusum_threshold
from crimelens.alerts.expected import BaselineModel, Expectation, PanelStats, WindowParams, expect, window_params
from crimelens.alerts.model import Alert, spike_severity
from crimelens.alerts.multiple import Correction, adjust
from crimelens.alerts.panel import CountPanel
from crimelens.exceptions import InputError, MissingExtraError

Method = Literal["nb", "ewma", "cusum"]
METHODS: Final = ("nb", "ewma", "cusum")
FloatArray = npt.NDArray[np.float64]


@dataclass(eq=False)
class ScanState:
    """Everything a scan computed for one window end, kept so a few series can be re-evaluated."""

    stats: PanelStats
    end: int
    params: list[WindowParams]
    current: list[Expectation]
    history: list[FloatArray]
    stl: list[FloatArray]


@dataclass(frozen=True, eq=False)
class ScanResult:
    """Alerts of one scan, every comparison made, and the parameters used."""

    alerts: list[Alert]
    tests: pd.DataFrame
    params: dict[str, Any]

    @property
    def n_tests(self) -> int:
        """Number of comparisons in the multiple-testing family."""
        return int(self.tests["testable"].sum()) if len(self.tests) else 0

    def to_frame(self) -> pd.DataFrame:
        """The alerts as a frame (one row per alert)."""
        return pd.DataFrame([a.to_dict() for a in self.alerts])


@dataclass(frozen=True, kw_only=True)
class SpikeDetector:
    """Configuration of a spike scan (see the module docstring).

    Parameters
    ----------
    window_days
        Window lengths tested at each scan (all enter the same family).
    baseline
        How expected counts are computed.
    method
        Decision statistic: ``nb``, ``ewma`` or ``cusum``.
    fdr
        False discovery rate (or family-wise level for Bonferroni / CUSUM).
    correction
        ``bh`` (Benjamini–Hochberg), ``by`` (Benjamini–Yekutieli) or ``bonferroni``.
    min_observed, min_ratio
        An alert needs at least this many incidents and this observed/expected ratio.
    history_windows
        Windows (current included) in the EWMA and CUSUM charts.
    ewma_lambda, cusum_k
        Chart parameters.
    stl_score
        Compute the STL residual score of alerted series as extra evidence.
    mid_p
        Decide on the mid-p value (Lancaster 1961) instead of ``P(Y ≥ y)``: less conservative for
        small counts, at the price of exact validity.
    """

    window_days: tuple[int, ...] = (7,)
    baseline: BaselineModel = field(default_factory=BaselineModel)
    method: Method = "nb"
    fdr: float = 0.05
    correction: Correction = "bh"
    min_observed: int = 3
    min_ratio: float = 1.5
    history_windows: int = 8
    ewma_lambda: float = 0.3
    cusum_k: float = 0.5
    stl_score: bool = True
    mid_p: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if not self.window_days or min(self.window_days) < 1:
            raise InputError("window_days must be positive")
        if not 0 < self.fdr < 1:
            raise InputError(f"fdr must be in (0, 1), got {self.fdr}")
        if self.history_windows < 2:
            raise InputError("history_windows must be at least 2")

    def params(self) -> dict[str, Any]:
        """Every parameter that shapes a result, JSON-ready."""
        d = asdict(self)
        d["window_days"] = list(self.window_days)
        return d

    # -- scanning -------------------------------------------------------------------------
    def scan(self, panel: CountPanel, *, end: Any = None, stats: PanelStats | None = None) -> ScanResult:
        """Scan the windows ending at ``end`` (exclusive; default the panel's end)."""
        return self.decide(self.prepare(panel, end=end, stats=stats))

    def prepare(self, panel: CountPanel, *, end: Any = None,
                stats: PanelStats | None = None) -> ScanState:
        """Compute expectations and chart histories for every series (the costly part of a scan)."""
        st = stats if stats is not None else PanelStats(panel)
        e = panel.n_days if end is None else panel.day_index(end)
        if not 0 < e <= panel.n_days:
            raise InputError(f"scan end {end} is outside the data ({panel.start:%Y-%m-%d} to {panel.end:%Y-%m-%d})")
        params, current, history, stl = [], [], [], []
        for w in self.window_days:
            wp = window_params(st, e, w, self.baseline)
            params.append(wp)
            current.append(expect(st, e, w, self.baseline, params=wp))
            history.append(self._history(st, e, w))
            stl.append(np.full(panel.n_series, np.nan))
        return ScanState(stats=st, end=e, params=params, current=current, history=history, stl=stl)

    def update(self, state: ScanState, rows: npt.ArrayLike) -> ScanResult:
        """Re-evaluate only ``rows`` (after new incidents), reusing everything else, and decide again."""
        idx = np.asarray(rows, dtype=np.int64)
        if idx.size:
            for i, w in enumerate(self.window_days):
                part = expect(state.stats, state.end, w, self.baseline, params=state.params[i], rows=idx)
                full = state.current[i]
                for name in ("observed", "expected", "lower", "upper", "p_value", "mid_p", "dispersion",
                             "baseline", "season", "testable"):
                    getattr(full, name)[idx] = getattr(part, name)
                state.stl[i][idx] = np.nan
        return self.decide(state)

    def decide(self, state: ScanState) -> ScanResult:
        """Apply the decision rule and the multiple-testing correction to a prepared scan."""
        panel = state.stats.panel
        frames = []
        for i, w in enumerate(self.window_days):
            ex = state.current[i]
            scores = np.column_stack([state.history[i], ex.score])
            z, sd = ewma(scores, self.ewma_lambda)
            frames.append(pd.DataFrame({
                "area": panel.keys["area"].to_numpy(object), "category": panel.keys["category"].to_numpy(object),
                "series": np.arange(panel.n_series), "window_days": w, "window_start": ex.window_start,
                "window_end": ex.window_end, **ex.columns(), "ewma_z": z / sd, "ewma_p": sps.norm.sf(z / sd),
                "cusum": cusum(scores, self.cusum_k), "stl_z": state.stl[i],
            }))
        tests = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        if tests.empty:
            return ScanResult([], tests, self._result_params(panel, 0, None))
        testable = tests["testable"].to_numpy(bool)
        h = None
        if self.method == "cusum":
            h = family_cusum_threshold(max(int(testable.sum()), 1), self.fdr, self.cusum_k)
            signal = testable & (tests["cusum"].to_numpy() > h)
            decision_p = np.where(testable, tests["p_value"].to_numpy(), np.nan)
            q = adjust(decision_p, self.correction)
        else:
            column = {"nb": "mid_p" if self.mid_p else "p_value", "ewma": "ewma_p"}[self.method]
            raw = tests[column].to_numpy(float)
            decision_p = np.where(testable & ~np.isnan(raw), raw, np.nan)
            q = adjust(decision_p, self.correction)
            signal = np.nan_to_num(q, nan=1.0) <= self.fdr
        obs, expd = tests["observed"].to_numpy(), tests["expected"].to_numpy()
        signal &= (obs >= self.min_observed) & (obs >= self.min_ratio * expd)
        tests["decision_p"], tests["q_value"], tests["alert"] = decision_p, q, signal
        alerts = self._alerts(state, tests)
        return ScanResult(alerts, tests, self._result_params(panel, int(testable.sum()), h))

    # -- internals ------------------------------------------------------------------------
    def _history(self, st: PanelStats, end: int, w: int) -> FloatArray:
        """Normal scores of the ``history_windows - 1`` windows before the current one (oldest first)."""
        cols = []
        for k in range(self.history_windows - 1, 0, -1):
            e = end - k * w
            if e - w < 0 or e <= 0:
                cols.append(np.zeros(st.panel.n_series))
                continue
            key = (e, w, self.baseline)
            if key not in st.score_cache:
                ex = expect(st, e, w, self.baseline, interval=False)
                st.score_cache[key] = np.where(ex.testable, ex.score, 0.0)
            cols.append(st.score_cache[key])
        return np.column_stack(cols) if cols else np.zeros((st.panel.n_series, 0))

    def _stl(self, panel: CountPanel, rows: npt.NDArray[np.int64], end: int, w: int) -> FloatArray:
        from crimelens.alerts.stl import stl_scores

        try:
            return stl_scores(panel, rows, end, w)
        except MissingExtraError:  # statsmodels absent: the score is optional evidence
            return np.full(rows.size, np.nan)

    def _alerts(self, state: ScanState, tests: pd.DataFrame) -> list[Alert]:
        flag = tests["alert"].to_numpy(bool)
        if not flag.any():
            return []
        hits = tests.iloc[np.flatnonzero(flag)]
        best = hits.sort_values(["decision_p", "window_days"]).drop_duplicates("series", keep="first")
        panel = state.stats.panel
        if self.stl_score:
            for i, w in enumerate(self.window_days):
                rows = best.loc[best["window_days"] == w, "series"].to_numpy(np.int64)
                if rows.size:
                    state.stl[i][rows] = self._stl(panel, rows, state.end, w)
                    best.loc[best["window_days"] == w, "stl_z"] = state.stl[i][rows]
        out = []
        for r in best.to_dict("records"):
            p = float(r["p_value"])
            out.append(Alert(
                kind="spike", area_level=panel.area_level, area=str(r["area"]), category=str(r["category"]),
                window_start=r["window_start"], window_end=r["window_end"], observed=float(r["observed"]),
                expected=float(r["expected"]), lower=float(r["lower"]), upper=float(r["upper"]), p_value=p,
                q_value=float(r["q_value"]),
                severity=spike_severity(min(p, float(r["decision_p"])), float(r["observed"]), float(r["expected"])),
                method=self.method, timezone=panel.tz,
                scores={"ewma_z": float(r["ewma_z"]), "ewma_p": float(r["ewma_p"]), "cusum": float(r["cusum"]),
                        "stl_z": float(r["stl_z"]), "dispersion": float(r["dispersion"]),
                        "season": float(r["season"]), "baseline_count": float(r["baseline"]),
                        "window_days": float(r["window_days"])},
            ))
        return sorted(out, key=lambda a: (a.p_value, a.area, a.category))

    def _result_params(self, panel: CountPanel, m: int, h: float | None) -> dict[str, Any]:
        p = self.params()
        p.update(area_level=panel.area_level, category_column=panel.category_column, n_series=panel.n_series,
                 n_tests=m, panel_start=panel.start_at.isoformat(), panel_end=panel.end.isoformat(), timezone=panel.tz,
                 dropped_coarse_time=panel.dropped)
        if h is not None:
            p["cusum_h"] = h
        return p


def attach_incidents(alerts: list[Alert], incidents: pd.DataFrame, *, category_column: str = "category") -> None:
    """Fill each alert's ``incident_ids`` (``source:incident_id``) from a canonical frame, in place."""
    if incidents.empty:
        return
    t = pd.to_datetime(incidents["occurred_at"], utc=True)
    for a in alerts:
        m = (t >= a.window_start) & (t < a.window_end) & (incidents[category_column].astype(str) == a.category)
        if a.area_level != "city":
            m &= incidents[a.area_level].astype(str) == a.area
        sel = incidents[m]
        a.incident_ids = [f"{s}:{i}" for s, i in zip(sel["source"], sel["incident_id"], strict=True)]
