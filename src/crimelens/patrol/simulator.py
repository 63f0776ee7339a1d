"""A patrol simulator over shifts: deterrence, displacement and discovery bias (a gymnasium env).

A :class:`ShiftCity` holds the true crime rate of every study-area cell in every shift of the
day (crimes per shift, calibrated from a fitted forecaster or a synthetic city's truth, see
:mod:`crimelens.patrol.calibration`). ``K`` units are sent to sites; a unit covers the cells
within ``radius_m`` of its site. In one shift, in cell ``i`` with true rate ``λ_i``:

* **deterrence**: a covered cell's rate falls by ``deterrence · λ_i``;
* **displacement**: a share ``displacement`` of the deterred crime moves, in equal parts, to the
  uncovered 8-neighbours of the cell (crime pushed off a covered cell with no uncovered neighbour
  is prevented);
* crimes are Poisson with the resulting rate; each is **reported** by the public with
  ``report_prob`` wherever the units are, and an unreported crime in a covered cell is
  **discovered** (a police-initiated record) with ``discover_prob``: records rise with presence.

Harm prevented is the expected crimes removed: ``Σ λ − Σ λ'``. Units move between shifts at most
``travel_m`` (centre to centre; ``None``: anywhere): requested sites are matched to units by the
shortest total move (Hungarian algorithm) and a move beyond the limit stops at the nearest cell
within reach of the request. :class:`VecPatrolSim` steps ``B`` independent copies at once with
NumPy; :class:`PatrolEnv` is the single-copy ``gymnasium.Env``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class Shift:
    """A shift of the day in local time: ``[start_hour, end_hour)``, wrapping past midnight."""

    name: str
    start_hour: int
    end_hour: int

    def contains(self, hour: npt.NDArray[np.int64]) -> BoolArray:
        """True for the local hours inside the shift."""
        h = np.asarray(hour)
        if self.start_hour < self.end_hour:
            return np.asarray((h >= self.start_hour) & (h < self.end_hour))
        return np.asarray((h >= self.start_hour) | (h < self.end_hour))


#: Day, evening and night shifts.
THREE_SHIFTS: tuple[Shift, ...] = (Shift("day", 7, 15), Shift("evening", 15, 23), Shift("night", 23, 7))


def shift_structure(n: int) -> tuple[Shift, ...]:
    """``n`` equal shifts starting at 07:00 (3 gives day / evening / night)."""
    if n == 3:
        return THREE_SHIFTS
    if n < 1 or 24 % n:
        raise InputError(f"shifts must divide the day evenly (1, 2, 3, 4, 6, 8, 12 or 24), got {n}")
    step = 24 // n
    return tuple(Shift(f"s{i + 1}", (7 + i * step) % 24, (7 + (i + 1) * step) % 24) for i in range(n))


@dataclass(frozen=True, eq=False)
class ShiftCity:
    """True crime rates per shift on the study-area cells of a grid.

    Attributes
    ----------
    grid : SquareGrid
        The grid the cells belong to.
    cells : ndarray of int, shape (n,)
        Study-area cell ids (positions 0..n-1 index every per-cell array).
    rates : ndarray of float, shape (n_shifts, n)
        Expected true crimes per cell in one occurrence of each shift.
    shifts : tuple of Shift
        The shift structure.
    groups : ndarray of int, shape (n,)
        Area group of each cell (for the fairness constraint and figures).
    group_names : tuple of str
        Name of each group index.
    """

    grid: SquareGrid
    cells: IntArray
    rates: FloatArray
    shifts: tuple[Shift, ...]
    groups: IntArray
    group_names: tuple[str, ...]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        n = len(self.cells)
        if n and (np.diff(self.cells) <= 0).any():
            raise InputError("study-area cells must be sorted and distinct")
        if self.rates.shape != (len(self.shifts), n):
            raise InputError(f"rates have shape {self.rates.shape}, expected {(len(self.shifts), n)}")
        if self.groups.shape != (n,) or (n and (self.groups.min() < 0 or self.groups.max() >= len(self.group_names))):
            raise InputError("every cell needs a group index into group_names")
        if not np.isfinite(self.rates).all() or (self.rates < 0).any():
            raise InputError("rates must be finite and non-negative")

    @property
    def n(self) -> int:
        """Number of study-area cells."""
        return len(self.cells)

    def centres(self) -> FloatArray:
        """Cell centres, ``(n, 2)`` metres."""
        if "xy" not in self._cache:
            x, y = self.grid.centres(self.cells)
            self._cache["xy"] = np.column_stack([x, y])
        out: FloatArray = self._cache["xy"]
        return out

    def reach(self, radius_m: float) -> sparse.csr_matrix:
        """Sparse 0/1 ``(n, n)``: row ``j`` marks the cells a unit at ``j`` covers."""
        key = f"reach{radius_m:g}"
        if key not in self._cache:
            self._cache[key] = reach_matrix(self.centres(), radius_m)
        out: sparse.csr_matrix = self._cache[key]
        return out

    def adjacency(self) -> sparse.csr_matrix:
        """Sparse 0/1 ``(n, n)``: the 8-neighbours of each cell inside the study area."""
        if "adj" not in self._cache:
            adj = reach_matrix(self.centres(), self.grid.cell_size * np.sqrt(2.0))
            self._cache["adj"] = (adj - sparse.identity(self.n, format="csr")).tocsr()
            self._cache["adj"].eliminate_zeros()
        out: sparse.csr_matrix = self._cache["adj"]
        return out

    def spec(self) -> dict[str, Any]:
        """The grid, cells and shift structure a policy trained here is tied to."""
        g = self.grid
        return {"grid": {"x0": g.x0, "y0": g.y0, "cell_size": g.cell_size, "nx": g.nx, "ny": g.ny, "crs": g.crs},
                "cells": int(self.n), "cells_digest": cells_digest(self.cells),
                "shifts": [asdict(s) for s in self.shifts], "groups": list(self.group_names)}

    def with_rates(self, rates: FloatArray) -> ShiftCity:
        """The same city with other rates (e.g. a forecast instead of the truth)."""
        return ShiftCity(self.grid, self.cells, np.asarray(rates, np.float64), self.shifts, self.groups,
                         self.group_names, self._cache)


def cells_digest(cells: IntArray) -> str:
    """A short SHA-256 of the study-area cell ids."""
    import hashlib

    return hashlib.sha256(np.asarray(cells, dtype="<i8").tobytes()).hexdigest()[:16]


def reach_matrix(xy: FloatArray, radius: float) -> sparse.csr_matrix:
    """Sparse 0/1 matrix: row ``j`` marks the points within ``radius`` of point ``j`` (itself too)."""
    n = len(xy)
    if radius <= 0 or n < 2:
        return sparse.identity(n, dtype=np.float64, format="csr")
    pairs = cKDTree(xy).query_pairs(radius + 1e-6, output_type="ndarray")
    rows = np.concatenate([np.arange(n), pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([np.arange(n), pairs[:, 1], pairs[:, 0]])
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Mechanics of the simulation (see the module docstring)."""

    units: int = 10
    radius_m: float = 0.0
    travel_m: float | None = None
    deterrence: float = 0.2
    displacement: float = 0.3
    report_prob: float = 0.4
    discover_prob: float = 0.6

    def __post_init__(self) -> None:
        if self.units < 1:
            raise InputError("units must be at least 1")
        for name in ("deterrence", "displacement", "report_prob", "discover_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {v}")
        if self.radius_m < 0 or (self.travel_m is not None and self.travel_m < 0):
            raise InputError("radius and travel must not be negative")


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one shift produced in every copy, arrays ``(B, n)`` unless noted.

    ``covered``: cells within reach of a unit; ``rate``: expected crimes after deterrence and
    displacement; ``crimes``, ``reported``, ``discovered``: sampled counts; ``prevented``:
    expected harm prevented per copy ``(B,)``; ``net``: sampled net crimes prevented by covering
    each covered cell (deterred minus displaced onto an uncovered neighbour; 0 where uncovered).
    """

    covered: BoolArray
    rate: FloatArray
    crimes: IntArray
    reported: IntArray
    discovered: IntArray
    prevented: FloatArray
    net: IntArray


class VecPatrolSim:
    """``batch`` independent copies of the patrol simulation, stepped together.

    Parameters
    ----------
    city : ShiftCity
        True rates per shift.
    config : SimConfig
        Units, reach, travel and mechanics.
    batch : int
        Number of copies.
    seed : int
        Seed of every random draw.
    """

    def __init__(self, city: ShiftCity, config: SimConfig, *, batch: int = 1, seed: int = 0) -> None:
        if config.units > city.n:
            raise InputError(f"{config.units} units but only {city.n} cells in the study area")
        self.city, self.config, self.batch = city, config, batch
        self.rng = np.random.default_rng(seed)
        self.reach = city.reach(config.radius_m)
        self.adj = city.adjacency()
        self.shift = 0
        self.positions: IntArray | None = None  # (B, K) cell positions of the units

    def reset(self, seed: int | None = None) -> None:
        """Back to the first shift with the units not yet placed."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.shift, self.positions = 0, None

    def move(self, requested: IntArray) -> IntArray:
        """Where the units end up when ``requested`` sites ``(B, K)`` are asked for (travel limit)."""
        req = np.asarray(requested, dtype=np.int64).reshape(self.batch, -1)
        if req.shape[1] != self.config.units or req.min() < 0 or req.max() >= self.city.n:
            raise InputError(f"each copy needs {self.config.units} site positions in [0, {self.city.n})")
        if self.positions is None or self.config.travel_m is None:
            return req
        xy = self.city.centres()
        out = np.empty_like(req)
        for b in range(self.batch):
            prev = xy[self.positions[b]]
            want = xy[req[b]]
            dist = np.hypot(prev[:, None, 0] - want[None, :, 0], prev[:, None, 1] - want[None, :, 1])
            units, sites = linear_sum_assignment(dist)
            for u, s in zip(units, sites, strict=True):
                out[b, u] = req[b, s] if dist[u, s] <= self.config.travel_m + 1e-6 else \
                    self._toward(self.positions[b, u], req[b, s])
        return out

    def _toward(self, start: int, goal: int) -> int:
        """The cell within travel of ``start`` nearest to ``goal``."""
        xy = self.city.centres()
        travel = float(self.config.travel_m or 0.0)
        ok = np.hypot(*(xy - xy[start]).T) <= travel + 1e-6
        cand = np.flatnonzero(ok)
        return int(cand[np.argmin(np.hypot(*(xy[cand] - xy[goal]).T))])

    def step(self, requested: IntArray) -> StepOutcome:
        """Play the current shift with the units sent to ``requested`` ``(B, K)``; advance the shift."""
        pos = self.move(requested)
        self.positions = pos
        lam = self.city.rates[self.shift]
        hits = np.zeros((self.batch, self.city.n))
        np.add.at(hits, (np.repeat(np.arange(self.batch), pos.shape[1]), pos.ravel()), 1.0)
        covered = np.asarray((self.reach.T @ hits.T).T > 0)
        out = self.outcome(lam, covered)
        self.shift = (self.shift + 1) % len(self.city.shifts)
        return out

    def outcome(self, lam: FloatArray, covered: BoolArray) -> StepOutcome:
        """Sample one shift given the true rates ``lam`` and the covered cells ``(B, n)``."""
        cfg, rng = self.config, self.rng
        cov = covered.astype(np.float64)
        deterred = cfg.deterrence * lam[None, :] * cov
        free = 1.0 - cov
        n_free = np.asarray((self.adj @ free.T).T)  # uncovered neighbours of each cell
        share = np.divide(cfg.displacement * deterred, n_free, out=np.zeros_like(deterred), where=n_free > 0)
        inflow = free * np.asarray((self.adj @ share.T).T)
        rate = lam[None, :] - deterred + inflow
        crimes = rng.poisson(rate)
        reported = rng.binomial(crimes, cfg.report_prob)
        discovered = rng.binomial(crimes - reported, cfg.discover_prob * cov)
        # sampled counterfactual of each covered cell: deterred crimes, minus those that land elsewhere
        would = rng.poisson(lam[None, :] * cov)
        held = rng.binomial(would, cfg.deterrence)
        moved = rng.binomial(held, cfg.displacement * (n_free > 0))
        prevented = lam.sum() - rate.sum(axis=1)
        return StepOutcome(covered, rate, crimes, reported, discovered, prevented, held - moved)

    def expected_prevented(self, sites: IntArray, shift: int) -> float:
        """Expected harm prevented in ``shift`` with units at ``sites`` (no sampling)."""
        hits = np.zeros(self.city.n)
        hits[np.asarray(sites, dtype=np.int64)] = 1.0
        cov = np.asarray(self.reach.T @ hits > 0, dtype=np.float64)
        lam = self.city.rates[shift]
        deterred = self.config.deterrence * lam * cov
        n_free = np.asarray(self.adj @ (1.0 - cov))
        lost = np.where(n_free > 0, self.config.displacement * deterred, 0.0)
        return float(deterred.sum() - lost.sum())


class PatrolEnv(gym.Env):  # type: ignore[type-arg]
    """One copy of :class:`VecPatrolSim` as a ``gymnasium`` environment.

    Observation: ``shift`` (index of the shift to plan), ``reported`` (public reports per cell in
    the last shift) and ``units`` (units per cell now). Action: a site position per unit
    (``MultiDiscrete([n] * K)``). Reward: expected harm prevented in the shift. An episode is
    ``episode_shifts`` shifts (default one week of the city's shifts).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    def __init__(self, city: ShiftCity, config: SimConfig, *, episode_shifts: int | None = None) -> None:
        self.sim = VecPatrolSim(city, config, batch=1)
        self.episode_shifts = episode_shifts or 7 * len(city.shifts)
        n = city.n
        self.action_space = gym.spaces.MultiDiscrete([n] * config.units)
        self.observation_space = gym.spaces.Dict({
            "shift": gym.spaces.Discrete(len(city.shifts)),
            "reported": gym.spaces.Box(0.0, 1e9, shape=(n,), dtype=np.float64),
            "units": gym.spaces.Box(0.0, float(config.units), shape=(n,), dtype=np.float64),
        })
        self._t = 0
        self._last = np.zeros(n)

    def _obs(self) -> dict[str, Any]:
        units = np.zeros(self.sim.city.n)
        if self.sim.positions is not None:
            np.add.at(units, self.sim.positions[0], 1.0)
        return {"shift": self.sim.shift, "reported": self._last.copy(), "units": units}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Start an episode (``seed`` reseeds the simulation)."""
        super().reset(seed=seed)
        self.sim.reset(seed)
        self._t = 0
        self._last = np.zeros(self.sim.city.n)
        return self._obs(), {}

    def step(self, action: Any) -> tuple[dict[str, Any], float, bool, bool, dict[str, Any]]:
        """Play one shift."""
        out = self.sim.step(np.asarray(action, dtype=np.int64)[None, :])
        self._t += 1
        self._last = out.reported[0].astype(np.float64)
        info = {"crimes": int(out.crimes.sum()), "reported": int(out.reported.sum()),
                "discovered": int(out.discovered.sum()), "covered": int(out.covered.sum())}
        return self._obs(), float(out.prevented[0]), False, self._t >= self.episode_shifts, info
