"""Patrol schedulers behind one interface: ``greedy``, ``mclp`` per shift, and ``rl``.

Every scheduler answers ``plan(shift, estimate)``: the site positions (indices into
``city.cells``) of the ``K`` units for one shift, given ``estimate`` — the expected crimes per cell
in that shift that the scheduler is allowed to know (a forecast; never the simulator's truth).

* ``greedy``: the ``K`` cells with the highest estimate (a top-N hot spot list per shift);
* ``mclp``: :func:`crimelens.patrol.allocate` (maximal covering, HiGHS) on the shift's estimate;
* ``mclp-fair``: the same integer programme with the ``rl`` scheduler's fairness caps as linear
  constraints (at most ``caps[g]`` sites in group ``g``), the like-for-like optimiser;
* ``rl``: :class:`ThompsonPolicy`, a combinatorial contextual bandit learned in the simulator
  (:mod:`crimelens.patrol.training`). It learns, per shift and cell, the *effectiveness* ``κ`` of
  covering that cell — net crimes prevented per expected crime, after deterrence and displacement —
  with a Gamma prior and the Poisson likelihood of the simulator's net-prevented counts
  (conjugate: ``κ ~ Gamma(α + Σ net, β + Σ estimate)``). A plan covers the most ``κ · estimate``
  with the greedy covering oracle (Thompson sampling with an oracle: Wang & Chen 2018), under a
  **fairness cap**: a group's share of the units is at most ``(1 + tolerance)`` times its share of
  *reported* crime (after Elzayn et al. 2019). Its evidence is the simulator's outcome, never its
  own discovered records, so it cannot chase them (the feedback loop of Ensign et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse

from crimelens.exceptions import InputError
from crimelens.patrol.allocation import allocate
from crimelens.patrol.simulator import IntArray, ShiftCity, SimConfig

FloatArray = npt.NDArray[np.float64]

#: Scheduler names, in the order the evaluation reports them.
METHODS: tuple[str, ...] = ("greedy", "mclp", "mclp-fair", "rl")


class Scheduler(Protocol):
    """What every scheduler offers."""

    name: str

    def plan(self, shift: int, estimate: FloatArray) -> IntArray:
        """Site positions of the units for ``shift`` given the expected crimes ``estimate`` ``(n,)``."""
        ...


@dataclass
class GreedyScheduler:
    """The ``K`` cells with the highest estimate (ties by position)."""

    city: ShiftCity
    config: SimConfig
    name: str = "greedy"

    def plan(self, shift: int, estimate: FloatArray) -> IntArray:
        """Top-``K`` cells of ``estimate``."""
        e = np.asarray(estimate, np.float64)
        return np.lexsort((np.arange(len(e)), -e))[: self.config.units].astype(np.int64)


@dataclass
class MCLPScheduler:
    """Maximal covering (:func:`crimelens.patrol.allocate`) on each shift's estimate.

    With ``tolerance`` set it is ``mclp-fair``: the integer programme also holds every group to
    the caps of :func:`group_caps` (from ``reported``, the reported crime per shift and cell, summed
    over the day as the ``rl`` scheduler does; the shift's estimate when None).
    """

    city: ShiftCity
    config: SimConfig
    time_limit_s: float = 10.0
    tolerance: float | None = None
    reported: FloatArray | None = None
    name: str = "mclp"

    def __post_init__(self) -> None:
        if self.tolerance is not None and self.name == "mclp":
            self.name = "mclp-fair"

    def caps(self, estimate: FloatArray) -> IntArray | None:
        """Units each group may receive (None without a fairness constraint)."""
        if self.tolerance is None:
            return None
        reported = estimate if self.reported is None else np.asarray(self.reported, np.float64).sum(axis=0)
        return group_caps(self.city.groups, len(self.city.group_names), reported, self.config.units, self.tolerance)

    def plan(self, shift: int, estimate: FloatArray) -> IntArray:
        """The exact (or, past the time limit, greedy) maximal-covering sites, within the caps."""
        from crimelens.forecast.surface import RiskSurface

        score = np.zeros(self.city.grid.n_cells)
        score[self.city.cells] = np.asarray(estimate, np.float64)
        t0 = pd.Timestamp("2000-01-03", tz="UTC")
        surface = RiskSurface(self.city.grid, score, t0, t0 + pd.Timedelta(hours=8), model="estimate",
                              expected_total=float(score.sum()), area=self.city.cells)
        caps = self.caps(estimate)
        areas = max_per = None
        if caps is not None:
            areas = dict(zip(self.city.cells.tolist(), (str(g) for g in self.city.groups.tolist()), strict=True))
            max_per = {str(g): int(k) for g, k in enumerate(caps.tolist())}
        plan = allocate(surface, self.config.units, radius_m=self.config.radius_m, time_limit_s=self.time_limit_s,
                        areas=areas, max_per_area=max_per)
        return np.searchsorted(self.city.cells, plan.sites).astype(np.int64)


def group_caps(groups: IntArray, n_groups: int, reported: FloatArray, units: int, tolerance: float) -> IntArray:
    """Most units each group may receive: ``floor((1 + tolerance) · share · K)`` of its reported-crime
    share; when those caps hold fewer than ``K`` units, raised one unit at a time where the raised
    group's ratio (units / share) stays smallest, so the worst ratio is as low as ``K`` allows."""
    if tolerance < 0:
        raise InputError(f"fairness tolerance must not be negative, got {tolerance}")
    mass = np.bincount(groups, weights=np.asarray(reported, np.float64), minlength=n_groups)
    size = np.bincount(groups, minlength=n_groups)
    if size.sum() < units:
        raise InputError(f"{units} units but only {size.sum()} cells")
    share = mass / mass.sum() if mass.sum() > 0 else size / size.sum()
    caps = np.minimum(np.floor((1.0 + tolerance) * share * units + 1e-9).astype(np.int64), size)
    while caps.sum() < units:
        ratio = np.where(caps < size, (caps + 1) / np.maximum(share, 1e-12), np.inf)
        caps[int(np.argmin(ratio))] += 1
    return np.asarray(caps, dtype=np.int64)


def cover(reach: sparse.csr_matrix, value: FloatArray, units: int, groups: IntArray | None = None,
          caps: IntArray | None = None) -> IntArray:
    """Greedy maximal covering of ``value`` with ``units`` sites, at most ``caps[g]`` sites in group ``g``."""
    left = np.clip(np.asarray(value, np.float64), 0.0, None)
    n = reach.shape[0]
    taken = np.zeros(n, dtype=bool)
    used = np.zeros(0 if caps is None else len(caps), dtype=np.int64)
    out: list[int] = []
    for _ in range(units):
        gain = np.asarray(reach @ left, dtype=np.float64) + 1e-12 * -np.arange(n)  # ties: lower position
        gain[taken] = -np.inf
        if caps is not None and groups is not None:
            gain[used[groups] >= caps[groups]] = -np.inf
        j = int(np.argmax(gain))
        out.append(j)
        taken[j] = True
        if caps is not None and groups is not None:
            used[groups[j]] += 1
        left[reach[j].indices] = 0.0
    return np.array(out, dtype=np.int64)


@dataclass
class ThompsonPolicy:
    """The ``rl`` scheduler: Gamma posteriors of covering effectiveness per shift and cell.

    Attributes
    ----------
    city : ShiftCity
        The city (grid, cells, shifts, groups) the policy is for.
    config : SimConfig
        Units and reach it plans for.
    alpha, beta : ndarray, shape (n_shifts, n)
        Gamma posterior parameters of ``κ``.
    tolerance : float or None
        Fairness tolerance (None: no cap).
    reported : ndarray, shape (n_shifts, n)
        Reported crimes per cell and shift the group shares are taken from.
    """

    city: ShiftCity
    config: SimConfig
    alpha: FloatArray
    beta: FloatArray
    tolerance: float | None = 0.25
    reported: FloatArray | None = None
    name: str = "rl"
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0), repr=False)

    @classmethod
    def prior(cls, city: ShiftCity, config: SimConfig, *, mean: float = 0.5, strength: float = 1.0,
              tolerance: float | None = 0.25, reported: FloatArray | None = None, seed: int = 0) -> ThompsonPolicy:
        """A policy that knows nothing yet: ``κ ~ Gamma(strength · mean, strength)`` everywhere."""
        if mean <= 0 or strength <= 0:
            raise InputError("prior mean and strength must be positive")
        shape = (len(city.shifts), city.n)
        return cls(city, config, np.full(shape, strength * mean), np.full(shape, strength), tolerance,
                   reported, rng=np.random.default_rng(seed))

    def effectiveness(self) -> FloatArray:
        """Posterior mean of ``κ``, ``(n_shifts, n)``."""
        return np.asarray(self.alpha / self.beta, dtype=np.float64)

    def caps(self, shift: int, estimate: FloatArray) -> IntArray | None:
        """Units each group may receive in ``shift`` (None without a fairness constraint): from the
        groups' shares of reported crime over the whole day, so every shift keeps the cap."""
        if self.tolerance is None:
            return None
        reported = estimate if self.reported is None else self.reported.sum(axis=0)
        return group_caps(self.city.groups, len(self.city.group_names), reported, self.config.units, self.tolerance)

    def plan(self, shift: int, estimate: FloatArray) -> IntArray:
        """Sites covering the most posterior-mean ``κ · estimate`` within the fairness caps."""
        value = self.effectiveness()[shift] * np.asarray(estimate, np.float64)
        return cover(self.city.reach(self.config.radius_m), value, self.config.units, self.city.groups,
                     self.caps(shift, estimate))

    def explore(self, shift: int, estimate: FloatArray, batch: int) -> IntArray:
        """``batch`` plans ``(batch, K)``, each on its own Thompson draw of ``κ``."""
        draws = self.rng.gamma(self.alpha[shift], 1.0 / self.beta[shift], size=(batch, self.city.n))
        caps = self.caps(shift, estimate)
        reach = self.city.reach(self.config.radius_m)
        est = np.asarray(estimate, np.float64)
        return np.stack([cover(reach, d * est, self.config.units, self.city.groups, caps) for d in draws])

    def update(self, shift: int, covered: npt.NDArray[np.bool_], net: IntArray, estimate: FloatArray) -> None:
        """Add the net crimes prevented ``(B, n)`` in the covered cells ``(B, n)`` to the posterior."""
        cov = np.asarray(covered, dtype=np.float64)
        self.alpha[shift] += (np.asarray(net, np.float64) * cov).sum(axis=0)
        self.beta[shift] += cov.sum(axis=0) * np.asarray(estimate, np.float64)


def make_scheduler(name: str, city: ShiftCity, config: SimConfig, *, policy: ThompsonPolicy | None = None,
                   time_limit_s: float = 10.0, tolerance: float | None = 0.25,
                   reported: FloatArray | None = None) -> Scheduler:
    """A scheduler by name (``rl`` needs a trained ``policy``; ``mclp-fair`` takes the fairness
    ``tolerance`` and ``reported`` crime of its caps — the policy's, when one is given)."""
    if name == "greedy":
        return GreedyScheduler(city, config)
    if name == "mclp":
        return MCLPScheduler(city, config, time_limit_s=time_limit_s)
    if name == "mclp-fair":
        if policy is not None:
            tolerance, reported = policy.tolerance, policy.reported if reported is None else reported
        return MCLPScheduler(city, config, time_limit_s=time_limit_s, tolerance=0.25 if tolerance is None
                             else tolerance, reported=reported, name="mclp-fair")
    if name == "rl":
        if policy is None:
            raise InputError("the rl scheduler needs a trained policy")
        return policy
    raise InputError(f"unknown scheduling method {name!r}; choose from {', '.join(METHODS)}")


def parse_methods(text: str) -> list[str]:
    """``"greedy,mclp,rl"`` → checked list of method names."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    bad = [m for m in names if m not in METHODS]
    if not names or bad:
        raise InputError(f"unknown scheduling method(s) {', '.join(bad) or '(none)'}; choose from {', '.join(METHODS)}")
    return names
