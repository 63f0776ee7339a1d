"""Held-out weeks: forecast, calibrate, train and schedule each week from its past, score on what happened.

For every weekly origin: a forecaster is fitted on the incidents before it, the simulator is
calibrated from its forecast (:func:`~crimelens.patrol.calibration.calibrate`), the ``rl`` policy is
trained in that simulator (or a saved one is loaded), each method plans every shift, and the plans
are scored on the week's incidents shift by shift. Feedback-loop stability is simulated once, on
the first week's city, for 52 weeks with discovery bias on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid
from crimelens.patrol.artifact import load_policy
from crimelens.patrol.calibration import Calibrated, calibrate, shift_index
from crimelens.patrol.evaluation import (
    captured_by_shift,
    coverage_fairness,
    feedback_run,
    harm_prevented,
    paired_interval,
    plan_shifts,
)
from crimelens.patrol.schedulers import Scheduler, ThompsonPolicy, make_scheduler
from crimelens.patrol.simulator import IntArray, SimConfig, shift_structure
from crimelens.patrol.training import TrainingReport, TrainingSettings, train_policy

WEEK = pd.Timedelta(days=7)


@dataclass(frozen=True)
class ScheduleSettings:
    """Everything a held-out evaluation or a schedule depends on (reported with the figures)."""

    model: str = "retro_kde"
    cell: float = 200.0
    shifts: int = 3
    tz: str = "UTC"
    group_column: str | None = None
    group_block_m: float = 4000.0
    sim: SimConfig = field(default_factory=SimConfig)
    training: TrainingSettings = field(default_factory=TrainingSettings)
    feedback_weeks: int = 52

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings."""
        out = asdict(self)
        out["sim"], out["training"] = asdict(self.sim), self.training.to_dict()
        return out


def week_city(incidents: pd.DataFrame, origin: pd.Timestamp, st: ScheduleSettings, *,
              grid: SquareGrid | None = None, cells: IntArray | None = None) -> Calibrated:
    """The calibrated city of the week starting at ``origin``, from the incidents before it.

    ``grid`` and ``cells`` fix the forecast grid and the study area (a saved policy's).
    """
    from crimelens.forecast import make

    before = incidents[incidents["occurred_at"] < origin]
    if before.empty:
        raise InputError(f"no located incidents before {origin.date()} to forecast from")
    params: dict[str, Any] = {"cell_size": st.cell, "horizon": "7d"}
    if grid is not None:
        params["grid"] = grid
    surface = make(st.model, **params).fit(before, until=origin).predict(horizon="7d")
    if cells is not None:
        surface = replace(surface, area=np.asarray(cells, dtype=np.int64))
    return calibrate(surface, before, shift_structure(st.shifts), tz=st.tz, report_prob=st.sim.report_prob,
                     group_column=st.group_column, group_block_m=st.group_block_m)


def rl_policy(cal: Calibrated, st: ScheduleSettings, policy_path: str | Path | None
              ) -> tuple[ThompsonPolicy, TrainingReport | None]:
    """A saved policy for the city (refused if it does not fit), or one trained for it now."""
    if policy_path is not None:
        pol = load_policy(policy_path, cal.city, units=st.sim.units)
        pol.reported = cal.estimate
        return pol, None
    return train_policy(cal.city, cal.estimate, st.sim, st.training)


def evaluate_heldout(incidents: pd.DataFrame, origins: list[pd.Timestamp], methods: list[str],
                     st: ScheduleSettings, *, policy_path: str | Path | None = None,
                     grid: SquareGrid | None = None, cells: IntArray | None = None) -> dict[str, Any]:
    """Each method's figures over the held-out weeks starting at ``origins``.

    Returns a JSON-able dict: per method ``captured`` (incidents in covered cells, all shift-weeks),
    ``captured_per_shift``, ``hit_rate``, ``harm_prevented_per_shift`` (in each week's calibrated
    simulator), ``fairness`` (largest patrol / reported-crime share ratio and its group) and
    ``stability`` (52-week feedback run); ``rl_vs_mclp`` and ``rl_vs_mclp_fair`` (paired bootstrap
    intervals of captured per shift-week); ``training`` (rl seconds and simulated shifts per second, per week).
    """
    if not origins:
        raise InputError("no held-out week between --from and --to")
    shift_of = shift_index(incidents["occurred_at"], shift_structure(st.shifts), st.tz)
    caught: dict[str, list[int]] = {m: [] for m in methods}
    harm: dict[str, list[float]] = {m: [] for m in methods}
    fair: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    training: list[dict[str, Any]] = []
    total = 0
    first: tuple[Calibrated, dict[str, Scheduler]] | None = None
    for origin in origins:
        cal = week_city(incidents, origin, st, grid=grid, cells=cells)
        scheds = _schedulers(cal, methods, st, policy_path, training)
        week = (incidents["occurred_at"] >= origin) & (incidents["occurred_at"] < origin + WEEK)
        w = incidents[week]
        cell = cal.city.grid.cell_of(w["x"].to_numpy(float), w["y"].to_numpy(float))
        idx = np.searchsorted(cal.city.cells, cell).clip(0, cal.city.n - 1)
        pos = np.where(cal.city.cells[idx] == cell, idx, -1)
        total += int((pos >= 0).sum())
        for m, sched in scheds.items():
            plans = plan_shifts(sched, cal.estimate)
            fair[m].append(coverage_fairness(cal.city, plans, cal.estimate))
            caught[m].extend(captured_by_shift(cal.city, st.sim.radius_m, plans, pos, shift_of[week.to_numpy()]))
            harm[m].extend(harm_prevented(cal.city, st.sim, plans))
        first = first or (cal, scheds)
    assert first is not None
    out: dict[str, Any] = {"weeks": [o.date().isoformat() for o in origins], "incidents": total,
                           "settings": st.to_dict(), "methods": {}}
    for m in methods:
        worst = max(fair[m], key=lambda f: f["max_ratio"])
        fairness = {"max_ratio": round(worst["max_ratio"], 4), "max_group": worst["max_group"],
                    "mean_week_max_ratio": round(float(np.mean([f["max_ratio"] for f in fair[m]])), 4)}
        stab = feedback_run(first[0].city, first[0].estimate, st.sim, first[1][m], weeks=st.feedback_weeks,
                            police_initiated_weight=0.0 if m == "rl" else 1.0, seed=st.training.seed)
        out["methods"][m] = {"captured": int(np.sum(caught[m])), "captured_per_shift": float(np.mean(caught[m])),
                             "hit_rate": float(np.sum(caught[m]) / total) if total else None,
                             "harm_prevented_per_shift": float(np.mean(harm[m])), "fairness": fairness,
                             "stability": stab.summary()}
    for base in ("mclp", "mclp-fair"):
        if "rl" in methods and base in methods:
            out[f"rl_vs_{base.replace('-', '_')}"] = paired_interval(np.array(caught["rl"], float),
                                                                    np.array(caught[base], float))
    if training:
        out["training"] = {"weeks": training,
                           "seconds_mean": float(np.mean([t["seconds"] for t in training])),
                           "shifts_per_s_mean": float(np.mean([t["shifts_per_s"] for t in training]))}
    return out


def _schedulers(cal: Calibrated, methods: list[str], st: ScheduleSettings, policy_path: str | Path | None,
                training: list[dict[str, Any]]) -> dict[str, Scheduler]:
    out: dict[str, Scheduler] = {}
    for m in methods:
        policy = None
        if m == "rl":
            policy, report = rl_policy(cal, st, policy_path)
            if report is not None:
                training.append(report.to_dict())
        out[m] = make_scheduler(m, cal.city, st.sim, policy=policy, tolerance=st.training.tolerance,
                                reported=cal.estimate)
    return out


def weekly_origins(start: pd.Timestamp, end: pd.Timestamp) -> list[pd.Timestamp]:
    """Week starts ``start, start + 7 d, ...`` whose whole week ends by ``end``."""
    if end <= start:
        raise InputError("--to must be after --from")
    out, t = [], start
    while t + WEEK <= end:
        out.append(t)
        t += WEEK
    return out
