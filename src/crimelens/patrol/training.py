"""Training the ``rl`` scheduler in the simulator: Thompson sampling over batched copies.

Each training step plays one shift in ``batch`` copies of the simulation at once
(:class:`~crimelens.patrol.simulator.VecPatrolSim`); every copy follows its own Thompson draw of
the policy's effectiveness posterior, and the net crimes prevented in the cells it covered update
the posterior (:meth:`~crimelens.patrol.schedulers.ThompsonPolicy.update`). The number of steps
is bounded, so training fits a small shared machine; the report says how long it took and how
many simulated shifts per second it ran.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from crimelens.exceptions import InputError
from crimelens.patrol.schedulers import ThompsonPolicy
from crimelens.patrol.simulator import FloatArray, ShiftCity, SimConfig, VecPatrolSim


@dataclass(frozen=True, slots=True)
class TrainingSettings:
    """How the policy is trained.

    Parameters
    ----------
    steps : int
        Shifts played (each by every copy).
    batch : int
        Parallel copies of the simulation.
    prior_mean, prior_strength : float
        Gamma prior of the effectiveness ``κ``: mean and pseudo-exposure.
    tolerance : float or None
        Fairness tolerance of the learned plans (None: no cap).
    seed : int
        Seed of the simulation and of the Thompson draws.
    """

    steps: int = 300
    batch: int = 16
    prior_mean: float = 0.5
    prior_strength: float = 1.0
    tolerance: float | None = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch < 1:
            raise InputError("training needs at least one step and one copy")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TrainingReport:
    """How training went: ``seconds``, simulated shifts (``steps × batch``) and their rate."""

    seconds: float
    simulated_shifts: int
    shifts_per_s: float
    mean_prevented: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def train_policy(city: ShiftCity, estimate: FloatArray, config: SimConfig,
                 settings: TrainingSettings | None = None) -> tuple[ThompsonPolicy, TrainingReport]:
    """Learn a :class:`ThompsonPolicy` for ``city`` in the simulator.

    Parameters
    ----------
    city : ShiftCity
        The simulator's city (true rates per shift).
    estimate : ndarray, shape (n_shifts, n)
        What the policy plans from (a forecast per shift); its shares of reported crime set the
        fairness caps.
    config : SimConfig
        Units, reach, travel and mechanics.
    settings : TrainingSettings, optional
        Steps, copies, prior, fairness tolerance, seed.

    Returns
    -------
    (ThompsonPolicy, TrainingReport)
    """
    st = settings or TrainingSettings()
    est = np.asarray(estimate, np.float64)
    if est.shape != city.rates.shape:
        raise InputError(f"estimate has shape {est.shape}, the city's rates {city.rates.shape}")
    policy = ThompsonPolicy.prior(city, config, mean=st.prior_mean, strength=st.prior_strength,
                                  tolerance=st.tolerance, reported=est, seed=st.seed)
    sim = VecPatrolSim(city, config, batch=st.batch, seed=st.seed)
    t0 = time.perf_counter()
    prevented = 0.0
    for _ in range(st.steps):
        s = sim.shift
        out = sim.step(policy.explore(s, est[s], st.batch))
        policy.update(s, out.covered, out.net, est[s])
        prevented += float(out.prevented.mean())
    secs = time.perf_counter() - t0
    n = st.steps * st.batch
    return policy, TrainingReport(secs, n, n / secs if secs > 0 else float("inf"), prevented / st.steps)
