"""``auto``: a forecaster that chooses its own models on the data it is given.

At each origin ``T``, :class:`Auto` runs a small backtest *inside* the training data: inner
origins ``T - h, T - 2h, ..., T - J·h`` (``h`` the horizon), each candidate fitted on the incidents
before the inner origin and scored on the inner window, which ends at or before ``T``. Nothing at
or after ``T`` is read (nested evaluation; Tashman 2000). From the inner folds it weights the
candidates' normalised surfaces:

* per inner fold and coverage, each candidate's captured incidents are divided by the mean over
  all inner folds and candidates (``normalise="all"``, the default: a fold counts in proportion to
  its incidents, so the thin weeks of a sparse category do not swing the weights), or by that
  fold's mean over candidates (``normalise="fold"``: every fold counts alike); ``z`` is the mean
  over coverages;
* each candidate's paired difference to the leader (highest mean ``z``) gets a t statistic
  ``t = mean / (sd / sqrt(n))``; the weight is ``exp(2t)`` (``sharpness=2``; the leader has
  ``t = 0``), and zero for ``t < -drop_t``. The candidates include *blends*: ``ensemble``, the
  equal-share mean of ``retro_kde``, ``sepp`` and ``gbm``, computed from their fits (no
  refitting). With thin evidence every ``t`` is near zero and the weights are near equal
  (shrinkage towards equal weights, or towards ``prior`` when one is given); with strong
  evidence they concentrate on the leader. With fewer than ``min_folds`` usable inner folds the weights
  are equal (or the prior).
* when the data hold several categories, each category with at least ``min_category_incidents``
  incidents in the last year gets its own weights (the rest are pooled), and the surface is the
  sum of the category surfaces, each scaled to its own rate.

Expected counts are recalibrated on the same inner folds: the combined share surface ``s`` is
raised to the power ``b`` and mixed with a uniform floor ``f`` over the history's footprint,
``(1 - f) s^b / sum + f / cells`` (a grid search over both for the best Poisson log score; ranks in
the footprint do not change; the power only with one group of categories, since a power per group
would reorder cells across groups), and the city total is multiplied by ``a`` = observed /
predicted over the inner folds. The floor carries the incidents that fall where every candidate
put almost nothing; without it the log score flattens the whole surface (``b`` at its lower bound)
to cover them, and the busiest cells are then under-predicted.

Candidate scores go through :mod:`crimelens.forecast.memo`, keyed by a digest of the data each
fit sees, so in a rolling backtest each inner fold is computed once and reused by later origins,
and the outer backtest's own fits of the same candidates at the same origins are reused too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.forecast import memo
from crimelens.forecast.base import Forecaster
from crimelens.forecast.evaluation.metrics import score_coverage
from crimelens.forecast.history import FloatArray, History, IntArray, parse_horizon
from crimelens.forecast.surface import RiskSurface
from crimelens.geo.grid import SquareGrid

#: Candidates tried by default (``ensemble`` is tried as a blend, below, not refitted as a model).
DEFAULT_CANDIDATES: tuple[str, ...] = ("retro_count", "retro_kde", "prospective", "sepp", "gbm", "recent")
#: Blends tried as further candidates: the equal-share mean of their parts' surfaces, computed from
#: the parts' (memoised) fits, so nearly free. ``ensemble`` is :mod:`crimelens.forecast.ensemble`'s
#: default, which is not the same as ``exp(t)`` weights on its members.
DEFAULT_BLENDS: tuple[tuple[str, tuple[str, ...]], ...] = (("ensemble", ("retro_kde", "sepp", "gbm")),)
Blends = Mapping[str, Sequence[str]] | Sequence[tuple[str, Sequence[str]]]
_POWERS = np.round(np.arange(0.5, 1.55, 0.05), 2)
#: Uniform floors tried with each power (the share of the total spread evenly over the footprint).
_FLOORS = (0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


def clear_cache() -> None:
    """Forget memoised inner-fold scores."""
    memo.clear()


def earlier(history: History, shift_days: float, horizon_days: float) -> tuple[History, FloatArray]:
    """The history as it stood ``shift_days`` before ``history.until`` and the counts per cell
    of the window ``[until - shift, until - shift + horizon)`` (which must end by ``until``)."""
    if horizon_days > shift_days + 1e-9:
        raise InputError("an inner window must end at or before the origin")
    until = history.until - pd.Timedelta(days=shift_days)
    train = history.age > shift_days
    age = history.age[train] - shift_days
    span = float(age.max()) if len(age) else 0.0
    past = History(history.grid, until, history.cell[train], age, history.category[train], history.categories, span)
    test = (history.age <= shift_days) & (history.age > shift_days - horizon_days)
    observed = np.bincount(history.cell[test], minlength=history.grid.n_cells).astype(np.float64)
    return past, observed


def only(history: History, categories: Sequence[int]) -> History:
    """The incidents of ``history`` in the given category codes."""
    m = np.isin(history.category, np.asarray(categories, dtype=np.int64))
    age = history.age[m]
    return History(history.grid, history.until, history.cell[m], age, history.category[m], history.categories,
                   float(age.max()) if len(age) else 0.0)


@dataclass(frozen=True, slots=True)
class Choice:
    """What :class:`Auto` chose for one group of categories and why."""

    categories: tuple[str, ...]
    weights: dict[str, float]
    relative_pai: dict[str, float]
    t_vs_leader: dict[str, float]
    n_folds: int
    power: float
    scale: float
    reason: str
    floor: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"categories": list(self.categories), "weights": self.weights, "relative_pai": self.relative_pai,
                "t_vs_leader": self.t_vs_leader, "inner_folds": self.n_folds,
                "recalibration": {"power": self.power, "floor": self.floor, "scale": self.scale},
                "reason": self.reason}


class Auto(Forecaster):
    """Candidates weighted by a nested backtest before each origin (see the module docstring).

    Parameters
    ----------
    candidates : sequence of str
        Registry names of the candidate models.
    blends : mapping of str to sequence of str, or (name, parts) pairs
        Further candidates, each the equal-share mean of the surfaces of some of ``candidates``
        (from the same fits: no extra fitting). A blend whose parts are not all candidates is
        skipped. Default: ``ensemble`` = ``retro_kde``, ``sepp``, ``gbm``.
    inner_folds : int
        Inner origins ``T - h, ..., T - inner_folds·h``.
    coverages : sequence of float
        Coverages whose PAI the weights are chosen on.
    drop_t : float
        Candidates more than ``drop_t`` standard errors behind the leader get weight zero.
    min_folds : int
        Fewer usable inner folds than this: equal weights.
    per_category : bool
        Choose weights per category where data allow.
    min_category_incidents : int
        Incidents in the last 365 days a category needs for its own weights.
    horizon : str or float
        The horizon candidates are trained for.
    normalise : {"fold", "all"}
        ``"fold"``: each inner fold's captured incidents are divided by that fold's mean over the
        candidates (every fold counts alike); ``"all"``: by the mean over all inner folds (folds
        with more incidents count more: steadier on sparse categories).
    sharpness : float
        Weights are ``prior · exp(sharpness · t)``: above 1 concentrates on the leader sooner.
    prior : mapping of str to float, optional
        Prior weight of each candidate (default 1 each): where the evidence is thin (every ``t``
        near zero) the weights shrink towards the prior instead of towards equal weights.
    power : bool
        Recalibrate the shape: a uniform floor ``f`` always, and a power ``b`` when there is one
        group of categories (else, and
        always with several groups, ``b = 1``: a power per group would reorder cells across groups,
        which cost 5 % PAI at 1 % on the synthetic city; the total is scaled either way).
    select : {"weights", "leader"}
        ``"weights"``: the ``exp(t)`` weights; ``"leader"``: all weight on the inner folds' leader.
    n_jobs : int
        Threads for candidates that take them.
    cell_size : float
        Cell size in metres when no ``grid`` is given.
    grid : SquareGrid, optional
        A fixed grid.

    Attributes
    ----------
    choices_ : list of Choice
        Per group of categories: weights, evidence and recalibration.
    """

    name = "auto"

    def __init__(self, *, candidates: Sequence[str] = DEFAULT_CANDIDATES, blends: Blends = DEFAULT_BLENDS,
                 inner_folds: int = 12,
                 coverages: Sequence[float] = (0.01, 0.05), drop_t: float = 2.0, min_folds: int = 3,
                 per_category: bool = True, min_category_incidents: int = 1500, horizon: str | float = "7d",
                 normalise: str = "all", sharpness: float = 2.0, prior: Mapping[str, float] | None = None,
                 power: bool = True, select: str = "weights",
                 n_jobs: int = 1, cell_size: float = 200.0, grid: SquareGrid | None = None) -> None:
        self.candidates = candidates
        self.blends = blends
        self.inner_folds = inner_folds
        self.coverages = coverages
        self.drop_t = drop_t
        self.min_folds = min_folds
        self.per_category = per_category
        self.min_category_incidents = min_category_incidents
        self.horizon = horizon
        self.normalise = normalise
        self.sharpness = sharpness
        self.prior = prior
        self.power = power
        self.select = select
        self.n_jobs = n_jobs
        self.cell_size = cell_size
        self.grid = grid

    # -- fitting -------------------------------------------------------------------------------
    def _members(self, grid: SquareGrid) -> dict[str, Forecaster]:
        from crimelens.forecast.registry import make

        names = list(dict.fromkeys(self.candidates))
        if not names or "auto" in names:
            raise InputError("auto needs candidate models (and not itself)")
        # the horizon in days, as the backtest sets it, so memo keys match the outer fits
        h = parse_horizon(self.horizon)
        return {n: make(n, grid=grid, horizon=h, n_jobs=self.n_jobs) for n in names}

    def active_blends(self, members: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The blends whose parts are all among ``members`` (name -> parts)."""
        out: dict[str, tuple[str, ...]] = {}
        for name, parts in dict(self.blends).items():
            if name in members or name == "auto":
                raise InputError(f"auto's blend {name!r} clashes with a candidate's name")
            if not parts:
                raise InputError(f"auto's blend {name!r} has no parts")
            if all(p in members for p in parts):
                out[name] = tuple(parts)
        return out

    def _groups(self, history: History) -> list[tuple[int, ...]]:
        n_cat = len(history.categories)
        if not self.per_category or n_cat < 2:
            return [tuple(range(n_cat))]
        recent = np.bincount(history.category[history.age < 365.0], minlength=n_cat)
        own = [c for c in range(n_cat) if recent[c] >= self.min_category_incidents]
        rest = tuple(c for c in range(n_cat) if c not in own)
        if len(own) < 2 and not rest:
            return [tuple(range(n_cat))]
        groups: list[tuple[int, ...]] = [(c,) for c in own]
        if rest:
            groups.append(rest)
        return groups if len(groups) > 1 else [tuple(range(n_cat))]

    def _fit(self, history: History) -> None:
        h = parse_horizon(self.horizon)
        members = self._members(history.grid)
        area = history.footprint()
        self.area_: IntArray = area  # the cells the recalibration was fitted on
        self.shares_: list[dict[str, FloatArray]] = []
        self.choices_: list[Choice] = []
        self.group_rates_: list[float] = []
        groups = self._groups(history)
        self.single_group_ = len(groups) == 1
        for group in groups:
            sub = only(history, group) if len(group) < len(history.categories) else history
            choice, shares = self._choose(sub, members, area, h, group)
            self.choices_.append(choice)
            self.shares_.append(shares)
            self.group_rates_.append(sub.rate_per_day())

    def _choose(self, history: History, members: dict[str, Forecaster], area: IntArray, h: float,
                group: tuple[int, ...]) -> tuple[Choice, dict[str, FloatArray]]:
        blends = self.active_blends(list(members))
        names = [*members, *blends]
        cats = tuple(history.categories[c] for c in group)
        hits: list[FloatArray] = []  # fold -> (coverage x candidate) incidents captured
        calib: list[tuple[FloatArray, float]] = []  # observed counts and predicted total per fold
        parts: list[dict[str, FloatArray]] = []
        for j in range(1, int(self.inner_folds) + 1):
            past, observed = earlier(history, j * h, h)
            if past.span_days < 28.0 or len(past) == 0:
                break
            y = observed[area]
            if y.sum() <= 0:
                continue
            scores = {n: v[area] for n, v in _with_blends(
                {n: memo.score(m, past, h) for n, m in members.items()}, blends).items()}
            hits.append(np.array([[score_coverage(scores[n], y, cov).n for n in names] for cov in self.coverages]))
            parts.append(scores)
            calib.append((y, past.rate_per_day() * h))
        z = relative_scores(np.asarray(hits, dtype=np.float64).reshape(len(hits), len(self.coverages), len(names)),
                            self.normalise)
        weights, t, reason = self.weigh(z, names)
        powers = _POWERS if self.power and self.single_group_ else np.ones(1)
        floors = _FLOORS if self.power else (0.0,)  # a floor per group adds the same to every footprint cell
        power, floor, scale = _recalibrate(weights, names, parts, calib, powers=powers, floors=floors)
        # shares do not depend on the window length (scores scale with it), so the kept candidates'
        # surfaces are computed once here, for the fit horizon
        kept = {n for n in names if weights[n] > 0}
        needed = {p for n in kept for p in blends.get(n, (n,))}
        shares = _with_blends({n: _shares(memo.score(m, history, h)) for n, m in members.items() if n in needed},
                              {b: parts for b, parts in blends.items() if b in kept})
        shares = {n: v for n, v in shares.items() if n in kept}
        rel = {n: float(z[:, i].mean()) if len(z) else float("nan") for i, n in enumerate(names)}
        return Choice(cats, weights, rel, t, len(z), power, scale, reason, floor), shares

    def weigh(self, z: FloatArray, names: list[str]) -> tuple[dict[str, float], dict[str, float], str]:
        """Weights, t statistics and a reason from ``z`` (inner folds x candidates, each fold's PAI
        over the candidates' mean)."""
        n = len(z)
        prior = np.array([float(dict(self.prior).get(m, 1.0)) for m in names]) if self.prior else np.ones(len(names))
        if (prior < 0).any() or prior.sum() <= 0:
            raise InputError("auto's prior weights must be non-negative and not all zero")
        if n < max(2, int(self.min_folds)):
            w = {m: float(v) for m, v in zip(names, prior / prior.sum(), strict=True)}
            what = "prior weights" if self.prior else "equal weights"
            return w, {m: 0.0 for m in names}, f"{n} usable inner folds (< {self.min_folds}): {what}"
        mean = z.mean(axis=0)
        lead = int(np.argmax(mean))
        d = z - z[:, [lead]]
        sd = d.std(axis=0, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(sd > 0, d.mean(axis=0) / (sd / np.sqrt(n)), np.where(d.mean(axis=0) < 0, -np.inf, 0.0))
        if self.select not in ("weights", "leader"):
            raise InputError(f"select must be 'weights' or 'leader', got {self.select!r}")
        raw = np.where(t < -float(self.drop_t), 0.0, prior * np.exp(np.clip(float(self.sharpness) * t, -50, 0)))
        if self.select == "leader" or raw.sum() <= 0:
            raw = np.where(np.arange(len(names)) == lead, 1.0, 0.0)
        raw = raw / raw.sum()
        w = {m: float(v) for m, v in zip(names, raw, strict=True)}
        kept = [m for m in names if w[m] > 0]
        dropped = [m for m in names if w[m] == 0]
        how = "all weight on the leader" if self.select == "leader" else \
            f"weights exp({float(self.sharpness):g}*t) of the paired PAI difference to the leader"
        reason = f"leader {names[lead]} over {n} inner folds; {how}; kept {', '.join(kept)}"
        if dropped and self.select == "weights":
            reason += f"; dropped (more than {self.drop_t:g} SE behind) {', '.join(dropped)}"
        return w, {m: float(v) for m, v in zip(names, t, strict=True)}, reason

    # -- prediction ----------------------------------------------------------------------------
    def _score(self, history: History, horizon_days: float) -> FloatArray:
        out = np.zeros(history.grid.n_cells)
        for choice, shares, rate in zip(self.choices_, self.shares_, self.group_rates_, strict=True):
            s = _combine(choice.weights, shares)
            s = np.power(s, choice.power)
            # the calibrated total belongs to the cells it was fitted on (the history's footprint):
            # a power b < 1 lifts the many near-zero cells outside it, which would otherwise take
            # a share of the total away from the cells where incidents occur
            total = s[self.area_].sum() if len(self.area_) else s.sum()
            if total > 0:
                mass = choice.scale * rate * horizon_days
                out += mass * (1.0 - choice.floor) * s / total
                if choice.floor and len(self.area_):
                    out[self.area_] += mass * choice.floor / len(self.area_)
        return out

    def predict(self, *, horizon: str | float = "7d") -> RiskSurface:
        """The risk surface; its ``expected_total`` is the recalibrated total."""
        from dataclasses import replace

        surface = super().predict(horizon=horizon)
        return replace(surface, expected_total=float(surface.score.sum()))

    def explain(self) -> dict[str, Any]:
        """Which models were chosen, per group of categories, and why."""
        self.check_fitted()
        return {"model": "auto", "origin": self.until_.isoformat(), "groups": [c.to_dict() for c in self.choices_]}


def relative_scores(hits: FloatArray, normalise: str = "fold") -> FloatArray:
    """``z`` (inner folds x candidates) from incidents captured (folds x coverages x candidates):
    each coverage's counts over the fold's mean over candidates (``"fold"``) or over the mean of
    all folds and candidates (``"all"``), then averaged over coverages."""
    if normalise not in ("fold", "all"):
        raise InputError(f"normalise must be 'fold' or 'all', got {normalise!r}")
    if len(hits) == 0:
        return np.zeros((0, hits.shape[-1]))
    if normalise == "fold":
        mean = hits.mean(axis=2, keepdims=True)
        rel = np.where(mean > 0, hits / np.where(mean > 0, mean, 1.0), 1.0)
    else:
        mean = hits.mean(axis=(0, 2), keepdims=True)
        rel = np.where(mean > 0, hits / np.where(mean > 0, mean, 1.0), 1.0)
    out: FloatArray = rel.mean(axis=1)
    return out


def _shares(score: FloatArray) -> FloatArray:
    s = np.clip(np.nan_to_num(np.asarray(score, dtype=np.float64)), 0.0, None)
    total = s.sum()
    return s / total if total > 0 else s


def _with_blends(scores: dict[str, FloatArray], blends: Mapping[str, Sequence[str]]) -> dict[str, FloatArray]:
    """``scores`` plus each blend: the mean of its parts' shares (as in ``ensemble``)."""
    out = dict(scores)
    for name, parts in blends.items():
        out[name] = np.mean([_shares(scores[p]) for p in parts], axis=0)
    return out


def _combine(weights: dict[str, float], shares: dict[str, FloatArray]) -> FloatArray:
    out: FloatArray | None = None
    for n, w in weights.items():
        if w > 0 and n in shares:
            out = w * shares[n] if out is None else out + w * shares[n]
    if out is None:
        raise InputError("auto kept no candidate")
    return out


def _recalibrate(weights: dict[str, float], names: list[str], parts: list[dict[str, FloatArray]],
                 calib: list[tuple[FloatArray, float]], powers: FloatArray = _POWERS,
                 floors: Sequence[float] = _FLOORS) -> tuple[float, float, float]:
    """The power ``b``, uniform floor ``f`` and total scale ``a`` that fit the inner folds best (Poisson)."""
    if not parts:
        return 1.0, 0.0, 1.0
    obs = sum(float(c[0].sum()) for c in calib)
    pred = sum(c[1] for c in calib)
    scale = obs / pred if pred > 0 and obs > 0 else 1.0
    if len(powers) == 1 and len(floors) == 1:  # nothing to choose: only the total is fitted
        return float(powers[0]), float(floors[0]), float(scale)
    combined = [_combine(weights, {n: _shares(p[n]) for n in names}) for p in parts]
    best, best_floor, best_ll = 1.0, float(floors[0]), -np.inf
    for b in powers:
        shaped = [np.power(s, b) for s in combined]
        shaped = [sb / sb.sum() if sb.sum() > 0 else np.full_like(sb, 1.0 / len(sb)) for sb in shaped]
        for f in floors:
            ll = 0.0  # the log(y!) term is the same for every (b, f), so it is left out
            for sb, (y, total) in zip(shaped, calib, strict=True):
                lam = scale * total * ((1.0 - f) * sb + f / len(sb))
                ll += float(np.sum(y * np.log(lam) - lam))
            if ll > best_ll:
                best, best_floor, best_ll = float(b), float(f), ll
    return best, best_floor, float(scale)
