"""Feedback-loop guard (SECURITY.md BIA-02) and the urn simulation that motivates it.

Police find crime where they patrol. If incidents *found by police* train the next forecast, the
places patrolled yesterday score higher today and get patrolled again, whatever their true rates:
a runaway feedback loop (Lum & Isaac 2016, "To predict and serve?", *Significance* 13(5);
Ensign et al. 2018, "Runaway feedback loops in predictive policing", FAT* 2018, PMLR 81).
Incidents *reported by the public* do not depend on where patrols went, so a model trained on them
(or on police-initiated incidents at a reduced weight) does not feed on its own output.

* :func:`provenance_weights` / :func:`guard_incidents` down-weight or exclude police-initiated
  incidents (the canonical ``discovery`` column, or any boolean mask) before training.
* :func:`simulate_urn` runs the two-area experiment of Ensign et al.: equal true rates, patrols
  sent where the forecast is highest, discovered crime fed back; :func:`compare_guard` repeats it
  over seeds, naive against guarded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.exceptions import InputError

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
Policy = Literal["max", "proportional"]

#: ``discovery`` value of incidents found by police (canonical schema).
POLICE_INITIATED = "police_initiated"


def police_initiated_mask(incidents: pd.DataFrame, *, column: str = "discovery",
                          mask: BoolArray | pd.Series | None = None) -> BoolArray:
    """True for police-initiated incidents: ``mask`` when given, else ``column == "police_initiated"``
    (``unknown`` and missing provenance count as reported)."""
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != (len(incidents),):
            raise InputError(f"mask has shape {m.shape}, incidents have {len(incidents)} rows")
        return m
    if column not in incidents.columns:
        raise InputError(f"incidents have no provenance column {column!r}: pass a boolean mask of "
                         "police-initiated incidents instead")
    return np.asarray(incidents[column].astype("string").str.lower().eq(POLICE_INITIATED).fillna(False),
                      dtype=bool)


def provenance_weights(incidents: pd.DataFrame, *, police_initiated_weight: float = 0.0,
                       column: str = "discovery", mask: BoolArray | pd.Series | None = None) -> FloatArray:
    """Training weight of each incident: 1 for reported, ``police_initiated_weight`` for
    police-initiated (0 excludes them, 1 leaves the data as it is)."""
    if not 0.0 <= police_initiated_weight <= 1.0:
        raise InputError(f"police_initiated_weight must be in [0, 1], got {police_initiated_weight}")
    pi = police_initiated_mask(incidents, column=column, mask=mask)
    return np.where(pi, police_initiated_weight, 1.0)


def guard_incidents(incidents: pd.DataFrame, *, police_initiated_weight: float = 0.0, column: str = "discovery",
                    mask: BoolArray | pd.Series | None = None, seed: int = 0) -> pd.DataFrame:
    """The incidents a forecaster should train on under the feedback-loop guard.

    Weight 0 drops police-initiated incidents, weight 1 keeps everything. A weight in between keeps
    each police-initiated incident with that probability (seeded thinning): the expected count of
    every cell is then exactly the weighted count, and it works with every forecaster, none of
    which needs to accept sample weights.

    Parameters
    ----------
    incidents : DataFrame
        Canonical incidents (not modified).
    police_initiated_weight : float
        Weight of police-initiated incidents in [0, 1].
    column : str
        Provenance column (canonical: ``discovery``).
    mask : array of bool, optional
        Police-initiated rows, when the data has no provenance column.
    seed : int
        Seed of the thinning.
    """
    w = provenance_weights(incidents, police_initiated_weight=police_initiated_weight, column=column, mask=mask)
    if police_initiated_weight >= 1.0:
        return incidents
    keep = w >= 1.0
    if police_initiated_weight > 0.0:
        keep |= np.random.default_rng(seed).random(len(w)) < w
    return incidents.loc[keep]


@dataclass(frozen=True, slots=True)
class UrnConfig:
    """The two-area patrol experiment.

    Parameters
    ----------
    days : int
        Days simulated; the forecast is refitted every day.
    rates : (float, float)
        True crimes per day in each area (equal by default).
    report_prob : float
        Probability that the public reports a crime, wherever patrols are.
    discover_prob : float
        Probability that a full day's patrol in an area finds one of its unreported crimes.
    policy : {"max", "proportional"}
        ``max``: the whole patrol goes to the area with the highest forecast (ties at random);
        ``proportional``: patrol time is split in proportion to the forecast (Ensign et al.'s urn).
    police_initiated_weight : float
        Weight of police-discovered incidents in the forecast: 1 is the naive loop, 0 the guard.
    prior : float
        Pseudo-count each area starts with.
    seed : int
        Random seed.
    """

    days: int = 365
    rates: tuple[float, float] = (5.0, 5.0)
    report_prob: float = 0.3
    discover_prob: float = 0.5
    policy: Policy = "max"
    police_initiated_weight: float = 1.0
    prior: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.days < 1 or len(self.rates) != 2 or min(self.rates) < 0 or sum(self.rates) <= 0:
            raise InputError("the urn needs days >= 1 and two non-negative rates")
        for name in ("report_prob", "discover_prob", "police_initiated_weight"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1]")
        if self.policy not in ("max", "proportional"):
            raise InputError(f"policy must be 'max' or 'proportional', got {self.policy!r}")
        if self.prior <= 0:
            raise InputError("prior must be positive")


@dataclass(frozen=True, slots=True, eq=False)
class UrnResult:
    """One run of the urn: arrays of shape ``(days, 2)`` and a summary.

    Attributes
    ----------
    patrol : ndarray
        Share of each day's patrol in each area.
    reported, discovered : ndarray
        Incidents reported by the public and found by police, per day and area.
    forecast_share : ndarray
        Each area's share of the forecast the patrol followed that day.
    """

    config: UrnConfig
    patrol: FloatArray
    reported: FloatArray
    discovered: FloatArray
    forecast_share: FloatArray

    @property
    def true_share(self) -> float:
        """Area 0's share of true crime."""
        return self.config.rates[0] / sum(self.config.rates)

    def summary(self, tail: float = 0.5) -> dict[str, float]:
        """Over the last ``tail`` of the days: patrol share of area 0 and of the more patrolled
        area, the forecast share of area 0 at the end, its gap to the true share, and the share of
        recorded incidents found by police."""
        start = int(len(self.patrol) * (1.0 - tail))
        p0 = float(self.patrol[start:, 0].mean())
        rec = self.reported + self.discovered
        final = float(self.forecast_share[-1, 0])
        return {
            "patrol_share_area0": p0,
            "patrol_share_top": max(p0, 1.0 - p0),
            "forecast_share_area0": final,
            "forecast_gap": abs(final - self.true_share),
            "recorded_share_area0": float(rec[:, 0].sum() / max(rec.sum(), 1.0)),
            "police_initiated_share": float(self.discovered.sum() / max(rec.sum(), 1.0)),
        }


def simulate_urn(config: UrnConfig | None = None, **overrides: Any) -> UrnResult:
    """Run the two-area patrol experiment (see :class:`UrnConfig`).

    Every day: the forecast is each area's weighted count of past recorded incidents plus the
    prior (reported incidents weigh 1, police-discovered ones ``police_initiated_weight``);
    patrols follow the policy; each area has Poisson(rate) true crimes; each is reported with
    ``report_prob``; each unreported one is discovered with ``discover_prob`` × the area's patrol
    share.
    """
    cfg = config or UrnConfig()
    if overrides:
        from dataclasses import replace

        cfg = replace(cfg, **overrides)
    rng = np.random.default_rng(cfg.seed)
    rates = np.asarray(cfg.rates, dtype=np.float64)
    est = np.full(2, cfg.prior)
    patrol = np.zeros((cfg.days, 2))
    reported = np.zeros((cfg.days, 2))
    discovered = np.zeros((cfg.days, 2))
    share = np.zeros((cfg.days, 2))
    for t in range(cfg.days):
        share[t] = est / est.sum()
        if cfg.policy == "max":
            top = np.flatnonzero(est == est.max())
            patrol[t, rng.choice(top)] = 1.0
        else:
            patrol[t] = share[t]
        crimes = rng.poisson(rates)
        rep = rng.binomial(crimes, cfg.report_prob)
        found = rng.binomial(crimes - rep, cfg.discover_prob * patrol[t])
        reported[t], discovered[t] = rep, found
        est = est + rep + cfg.police_initiated_weight * found
    return UrnResult(cfg, patrol, reported, discovered, share)


def compare_guard(config: UrnConfig | None = None, *, replications: int = 20,
                  guard_weight: float = 0.0, tail: float = 0.5) -> dict[str, Any]:
    """Naive (weight 1) against guarded (``guard_weight``) urns over ``replications`` seeds.

    Returns the mean and the spread of each :meth:`UrnResult.summary` value, per arm, and the
    configuration.
    """
    base = config or UrnConfig()
    if replications < 1:
        raise InputError("replications must be at least 1")
    out: dict[str, Any] = {"config": asdict(base), "replications": replications, "guard_weight": guard_weight}
    for arm, weight in (("naive", 1.0), ("guarded", guard_weight)):
        rows = [simulate_urn(base, police_initiated_weight=weight, seed=base.seed + i).summary(tail)
                for i in range(replications)]
        frame = pd.DataFrame(rows)
        out[arm] = {col: {"mean": float(frame[col].mean()), "min": float(frame[col].min()),
                          "max": float(frame[col].max())} for col in frame.columns}
    return out


__all__ = [
    "POLICE_INITIATED",
    "UrnConfig",
    "UrnResult",
    "compare_guard",
    "guard_incidents",
    "police_initiated_mask",
    "provenance_weights",
    "simulate_urn",
]
