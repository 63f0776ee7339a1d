"""When to retrain: on schedule, and on drift.

:func:`retrain_reasons` looks at what a scheduler knows about a model and the data and returns the
reasons to fit a new candidate (empty: no retraining). The triggers:

* **schedule** -- the production version is older than ``max_age_days`` (or there is none);
* **PSI** -- a drift check flagged a feature at ``alert`` (PSI above its band,
  :class:`crimelens.governance.drift.DriftThresholds`);
* **backtest** -- the agreed metric was below the production version's baseline score (by more
  than ``tolerance``) in each of the last ``periods_below`` scoring periods, not just one;
* **schema** -- the fingerprint of the incident schema (columns and categories) differs from
  the one the production version was trained on.

Retraining yields a *candidate*; whether it replaces production is the promotion rule's call
(:mod:`crimelens.registry.promotion`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from crimelens.exceptions import InputError


@dataclass(frozen=True, slots=True)
class RetrainPolicy:
    """Thresholds of the retraining triggers."""

    max_age_days: float = 7.0
    periods_below: int = 2
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if self.max_age_days <= 0 or self.periods_below < 1 or self.tolerance < 0:
            raise InputError("retrain policy needs max_age_days > 0, periods_below >= 1, tolerance >= 0")


@dataclass(frozen=True, slots=True)
class ModelState:
    """What the scheduler knows about one model when it decides.

    Parameters
    ----------
    trained_at : datetime or None
        When the production version was registered (None: no production version).
    baseline : float or None
        The production version's backtest score on the agreed metric.
    recent_scores : sequence of float
        The same metric on the latest scoring periods, oldest first.
    drift_alerts : sequence of str
        Features the latest drift check flagged at ``alert``.
    schema_fingerprint, trained_schema : str or None
        The data's schema fingerprint now and when production was trained.
    """

    trained_at: datetime | None
    baseline: float | None = None
    recent_scores: Sequence[float] = ()
    drift_alerts: Sequence[str] = ()
    schema_fingerprint: str | None = None
    trained_schema: str | None = None


def schema_fingerprint(columns: Iterable[str], categories: Iterable[str] = ()) -> str:
    """A short, order-independent fingerprint of the columns and categories models read."""
    text = "|".join(sorted(set(columns))) + "#" + "|".join(sorted(set(map(str, categories))))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def retrain_reasons(state: ModelState, now: datetime, policy: RetrainPolicy | None = None) -> list[str]:
    """The reasons to fit a new candidate now (empty: keep the current one)."""
    p = policy or RetrainPolicy()
    reasons: list[str] = []
    if state.trained_at is None:
        reasons.append("schedule: no production version")
    elif now - state.trained_at >= timedelta(days=p.max_age_days):
        age = (now - state.trained_at).total_seconds() / 86400
        reasons.append(f"schedule: production is {age:.1f} days old (max {p.max_age_days:g})")
    if state.drift_alerts:
        reasons.append(f"drift: PSI above its band on {', '.join(state.drift_alerts)}")
    if state.baseline is not None and len(state.recent_scores) >= p.periods_below:
        last = list(state.recent_scores)[-p.periods_below:]
        if all(s < state.baseline - p.tolerance for s in last):
            shown = ", ".join(f"{s:.3g}" for s in last)
            reasons.append(f"backtest: metric below baseline {state.baseline:.3g} for {p.periods_below} "
                           f"periods ({shown})")
    if state.schema_fingerprint and state.trained_schema and state.schema_fingerprint != state.trained_schema:
        reasons.append("schema: the incident schema changed since production was trained")
    return reasons
