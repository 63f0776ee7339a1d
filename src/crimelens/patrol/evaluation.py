"""Judging schedules: incidents covered, harm prevented, fairness by group, feedback-loop stability.

* :func:`captured_by_shift`: incidents of a held-out week inside each shift's covered cells;
* :func:`harm_prevented`: expected crimes a shift plan removes in a simulator (the truth);
* :func:`coverage_fairness`: each group's share of patrol (unit-shifts) over its share of
  *reported* crime; the largest ratio is the figure (1 is proportional, the fairness constraint of
  the ``rl`` scheduler keeps it at or under ``1 + tolerance``);
* :func:`feedback_run`: 52 simulated weeks with discovery bias; every week each scheduler plans
  from an estimate updated with the records of the weeks before, police-initiated records entering
  with ``police_initiated_weight`` (1: the naive loop of Ensign et al. 2018; 0: the guard of
  :mod:`crimelens.governance.feedback`). The figure is the share of patrol in the most-patrolled
  group, week by week;
* :func:`paired_interval`: a bootstrap interval of the mean difference of two methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import bootstrap

from crimelens.exceptions import InputError
from crimelens.patrol.schedulers import Scheduler, group_caps
from crimelens.patrol.simulator import FloatArray, IntArray, ShiftCity, SimConfig, VecPatrolSim


def plan_shifts(scheduler: Scheduler, estimate: FloatArray) -> IntArray:
    """``(n_shifts, K)`` site positions: one plan per shift from that shift's estimate."""
    return np.stack([scheduler.plan(s, estimate[s]) for s in range(estimate.shape[0])])


def covered_cells(city: ShiftCity, radius_m: float, sites: IntArray) -> np.ndarray:
    """Boolean ``(n,)``: the cells units at ``sites`` cover."""
    hits = np.zeros(city.n)
    hits[np.asarray(sites, dtype=np.int64)] = 1.0
    return np.asarray(city.reach(radius_m).T @ hits > 0)


def captured_by_shift(city: ShiftCity, radius_m: float, plans: IntArray, cell_pos: IntArray,
                      shift: IntArray) -> IntArray:
    """Incidents (study-area positions ``cell_pos``, shift index ``shift``) in each shift's covered cells."""
    out = np.zeros(len(plans), dtype=np.int64)
    for s, sites in enumerate(plans):
        cov = covered_cells(city, radius_m, sites)
        mine = cell_pos[(shift == s) & (cell_pos >= 0)]
        out[s] = int(cov[mine].sum())
    return out


def harm_prevented(truth: ShiftCity, config: SimConfig, plans: IntArray) -> FloatArray:
    """Expected crimes each shift's plan prevents in the simulator of ``truth``, ``(n_shifts,)``."""
    sim = VecPatrolSim(truth, config)
    return np.array([sim.expected_prevented(p, s) for s, p in enumerate(plans)], dtype=np.float64)


def coverage_fairness(city: ShiftCity, plans: IntArray, reported: FloatArray) -> dict[str, Any]:
    """Patrol share over reported-crime share per group, for plans ``(..., K)`` of site positions.

    Returns ``max_ratio`` (over groups with reported crime), ``max_group`` and ``by_group``
    (``patrol_share``, ``reported_share``, ``ratio``).
    """
    g = len(city.group_names)
    patrol = np.bincount(city.groups[np.asarray(plans, dtype=np.int64).ravel()], minlength=g).astype(float)
    mass = np.bincount(city.groups, weights=np.asarray(reported, np.float64).reshape(-1, city.n).sum(axis=0),
                       minlength=g)
    if patrol.sum() == 0 or mass.sum() <= 0:
        raise InputError("fairness needs at least one unit and some reported crime")
    p_share, r_share = patrol / patrol.sum(), mass / mass.sum()
    ratio = np.divide(p_share, r_share, out=np.full(g, np.inf), where=r_share > 0)
    ratio[(p_share == 0) & (r_share == 0)] = 0.0
    k = int(np.argmax(ratio))
    return {"max_ratio": float(ratio[k]), "max_group": city.group_names[k],
            "by_group": {city.group_names[i]: {"patrol_share": round(float(p_share[i]), 5),
                                               "reported_share": round(float(r_share[i]), 5),
                                               "ratio": round(float(ratio[i]), 4)}
                         for i in range(g) if p_share[i] > 0 or r_share[i] > 0}}


def cap_audit(city: ShiftCity, plans: IntArray, reported: FloatArray, tolerance: float | None) -> dict[str, Any]:
    """Whether every shift's plan keeps each group within its fairness cap (:func:`group_caps` on the
    day's reported crime, the caps the policy plans under), with the day's patrol / reported share
    ratios of :func:`coverage_fairness`. Without a ``tolerance`` there is no cap and the audit fails.

    Returns ``passed``, ``flagged`` (groups over their cap on some shift), ``max_ratio``,
    ``max_group``, ``tolerance`` and ``caps`` per group."""
    fair = coverage_fairness(city, plans, reported)
    out: dict[str, Any] = {"test": "units per group <= fairness cap on every shift", "tolerance": tolerance,
                           "max_ratio": round(fair["max_ratio"], 4), "max_group": fair["max_group"]}
    if tolerance is None:
        return {**out, "passed": False, "flagged": ["no fairness cap (tolerance unset)"], "caps": {}}
    g = len(city.group_names)
    plans = np.asarray(plans, dtype=np.int64)
    caps = group_caps(city.groups, g, np.asarray(reported, np.float64).reshape(-1, city.n).sum(axis=0),
                      plans.shape[-1], tolerance)
    used = np.stack([np.bincount(city.groups[p], minlength=g) for p in plans.reshape(-1, plans.shape[-1])])
    over = [city.group_names[i] for i in range(g) if used[:, i].max() > caps[i]]
    return {**out, "passed": not over, "flagged": over,
            "caps": {city.group_names[i]: int(caps[i]) for i in range(g) if caps[i] > 0}}


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """Weekly patrol concentration in a feedback run.

    ``top_share[w]``: share of week ``w``'s unit-shifts in the group patrolled most over the run
    (``group``); ``records_share[w]``: that group's share of the records the estimate was built
    from; ``true_share``: its share of true crime.
    """

    group: str
    top_share: FloatArray
    records_share: FloatArray
    true_share: float

    def summary(self) -> dict[str, Any]:
        """First week, mean of the last four, the rise between them and the true crime share."""
        first, last = float(self.top_share[0]), float(self.top_share[-4:].mean())
        return {"group": self.group, "first_week_share": round(first, 4), "last_weeks_share": round(last, 4),
                "rise": round(last - first, 4), "true_share": round(self.true_share, 4),
                "records_share_last": round(float(self.records_share[-1]), 4)}


def feedback_run(truth: ShiftCity, prior: FloatArray, config: SimConfig, scheduler: Scheduler, *,
                 weeks: int = 52, police_initiated_weight: float = 1.0, prior_days: float = 7.0,
                 smoothing: float = 0.5, seed: int = 0) -> FeedbackResult:
    """Schedule ``weeks`` weeks in the simulator of ``truth``, re-estimating every week from records.

    Parameters
    ----------
    truth : ShiftCity
        True rates; the simulation samples crimes, reports and discoveries from them.
    prior : ndarray, shape (n_shifts, n)
        The estimate before the run (recorded incidents per shift), worth ``prior_days`` days.
    config : SimConfig
        Units, reach and mechanics (discovery bias is ``discover_prob``).
    scheduler : Scheduler
        Plans every shift of a week from the current estimate.
    weeks : int
        Weeks simulated.
    police_initiated_weight : float
        Weight of discovered records in the estimate (1 naive, 0 guarded).
    prior_days : float
        Days of evidence the prior is worth.
    smoothing : float
        Weight of the 8-neighbour mean in each cell's estimate (forecasters smooth in space, so
        records found in a patrolled cell raise its neighbours too; 0: cell by cell).
    seed : int
        Seed of the simulation.
    """
    if weeks < 1 or not 0.0 <= police_initiated_weight <= 1.0:
        raise InputError("weeks must be positive and police_initiated_weight in [0, 1]")
    s_n = len(truth.shifts)
    sim = VecPatrolSim(truth, config, seed=seed)
    records = np.zeros((s_n, truth.n))
    days = 0
    per_week = np.zeros((weeks, len(truth.group_names)))
    rec_groups = np.zeros((weeks, len(truth.group_names)))
    adj = truth.adjacency()
    n_nbr = np.maximum(np.asarray(adj.sum(axis=1)).ravel(), 1.0)
    for w in range(weeks):
        raw = (prior_days * prior + records) / (prior_days + days)
        est = (1.0 - smoothing) * raw + smoothing * np.asarray(adj @ raw.T).T / n_nbr
        rec_groups[w] = np.bincount(truth.groups, weights=est.sum(axis=0), minlength=len(truth.group_names))
        plans = plan_shifts(scheduler, est)
        for _ in range(7):
            for s in range(s_n):
                out = sim.step(plans[s][None, :])
                assert sim.positions is not None
                per_week[w] += np.bincount(truth.groups[sim.positions[0]], minlength=len(truth.group_names))
                records[s] += out.reported[0] + police_initiated_weight * out.discovered[0]
            days += 1
    top = int(np.argmax(per_week.sum(axis=0)))
    true = np.bincount(truth.groups, weights=truth.rates.sum(axis=0), minlength=len(truth.group_names))
    return FeedbackResult(truth.group_names[top], per_week[:, top] / per_week.sum(axis=1),
                          rec_groups[:, top] / rec_groups.sum(axis=1), float(true[top] / true.sum()))


def paired_interval(a: FloatArray, b: FloatArray, *, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Mean of ``a − b`` over paired units (e.g. shift-weeks) with a percentile bootstrap interval."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if len(d) < 2:
        return {"mean_diff": float(d.mean()) if len(d) else float("nan"), "low": float("nan"), "high": float("nan")}
    if np.allclose(d, d[0]):
        return {"mean_diff": float(d[0]), "low": float(d[0]), "high": float(d[0])}
    res = bootstrap((d,), np.mean, confidence_level=level, n_resamples=2000, method="percentile",
                    random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return {"mean_diff": float(d.mean()), "low": float(ci.low), "high": float(ci.high)}
