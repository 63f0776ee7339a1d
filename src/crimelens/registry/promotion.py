"""The promotion rule: when a candidate may replace the production version.

A candidate is promoted only when

1. its bias audit ran and passed (SECURITY.md BIA-03), and
2. its rolling-backtest score on the agreed metric is not worse than production's (within
   ``tolerance``; higher is better unless the rule says otherwise).

A first version (no production yet) needs only (1) and the metric. The decision carries its
reasons, so the CLI, the scheduler and the audit log say why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from crimelens.exceptions import InputError
from crimelens.registry.manifest import Manifest

#: The agreed metric: hit rate with 5 % of the area flagged, from the rolling backtest.
DEFAULT_METRIC = "hit_rate@0.05"
#: The agreed metric per model kind where it is not :data:`DEFAULT_METRIC`: a patrol policy is
#: judged by the harm it prevents in its simulator relative to the fairness-capped optimiser
#: (``mclp-fair``) in the same simulator, a ratio comparable across versions trained on other weeks.
KIND_METRICS = {"patrol_policy": "harm_vs_mclp_fair"}


def metric_for(kind: str) -> str:
    """The agreed promotion metric of a model ``kind``."""
    return KIND_METRICS.get(kind, DEFAULT_METRIC)


@dataclass(frozen=True, slots=True)
class PromotionRule:
    """Compare ``metric`` (higher is better unless ``higher_is_better`` is False) within ``tolerance``."""

    metric: str = DEFAULT_METRIC
    higher_is_better: bool = True
    tolerance: float = 0.0

    def __post_init__(self) -> None:
        if not self.metric:
            raise InputError("a promotion rule needs a metric")
        if not (self.tolerance >= 0 and math.isfinite(self.tolerance)):
            raise InputError("promotion tolerance must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class PromotionDecision:
    """Whether ``candidate`` replaces ``production``, and why."""

    promote: bool
    candidate: str
    production: str | None
    metric: str
    candidate_score: float | None
    production_score: float | None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def _score(m: Manifest, metric: str) -> float | None:
    v = m.metrics.get(metric)
    return float(v) if isinstance(v, int | float) and math.isfinite(v) else None


def decide(rule: PromotionRule, candidate: Manifest, production: Manifest | None) -> PromotionDecision:
    """Apply ``rule`` to ``candidate`` against the current ``production`` (None when there is none)."""
    cand = _score(candidate, rule.metric)
    prod = _score(production, rule.metric) if production is not None else None
    reasons: list[str] = []
    ok = True
    if not candidate.bias_audit:
        ok = False
        reasons.append(f"{candidate.version} has no bias audit")
    elif not candidate.audit_passed:
        flags = candidate.bias_audit.get("flagged") or []
        ok = False
        reasons.append(f"{candidate.version} failed its bias audit"
                       + (f" (flagged: {', '.join(map(str, flags[:5]))})" if flags else ""))
    if cand is None:
        ok = False
        reasons.append(f"{candidate.version} has no {rule.metric} backtest score")
    elif production is None:
        reasons.append(f"no production version yet; {candidate.version} scores {rule.metric} = {cand:.4g}")
    elif prod is None:
        reasons.append(f"production {production.version} has no {rule.metric} score; candidate scores {cand:.4g}")
    else:
        diff = cand - prod if rule.higher_is_better else prod - cand
        if diff < -rule.tolerance:
            ok = False
            reasons.append(f"{rule.metric} {cand:.4g} is worse than production {production.version}'s {prod:.4g}")
        else:
            reasons.append(f"{rule.metric} {cand:.4g} is not worse than production {production.version}'s {prod:.4g}")
    if production is not None and production.version == candidate.version:
        ok = False
        reasons.append(f"{candidate.version} is already production")
    return PromotionDecision(ok, candidate.version, production.version if production else None, rule.metric,
                             cand, prod, reasons)
