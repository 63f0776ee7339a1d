"""De-duplication and cool-down: the same finding is announced once, an escalation again.

Given new candidate alerts and the alerts raised recently, each candidate is

* **suppressed** when it repeats an alert already raised -- the same id (same key and window),
  the same key (kind, rule or method, area, category) within the cool-down, or, for near-repeat
  series, an open series of the same rule sharing incidents -- and brings nothing new;
* an **update** of that earlier alert (keeping its id, creation time and status) when its
  severity is higher, or a series or threshold alert grew by new incidents;
* **new** otherwise.

Watched offences (``kind="watch"``) are per incident, so only the same incident is a repeat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crimelens.alerts.model import Alert, severity_rank


@dataclass(slots=True)
class DedupResult:
    """The outcome of :func:`deduplicate`."""

    new: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    suppressed: list[Alert] = field(default_factory=list)


def _merge(old: Alert, cand: Alert) -> Alert | None:
    """``old`` updated by ``cand``, or ``None`` when ``cand`` adds nothing."""
    grew = set(cand.incident_ids) - set(old.incident_ids)
    escalated = severity_rank(cand.severity) > severity_rank(old.severity)
    if not grew and not escalated:
        return None
    ids = sorted(set(old.incident_ids) | set(cand.incident_ids)) if old.kind == "series" else cand.incident_ids
    return cand.with_updates(
        alert_id=old.alert_id, created_at=old.created_at, status=old.status,
        incident_ids=ids, observed=float(len(ids)) if old.kind == "series" else cand.observed,
        window_start=min(old.window_start, cand.window_start) if old.kind == "series" else cand.window_start,
        severity=cand.severity if escalated else old.severity,
    )


def deduplicate(candidates: list[Alert], recent: list[Alert], *, now: Any,
                cooldown_hours: float = 72.0) -> DedupResult:
    """Split ``candidates`` into new alerts, updates of ``recent`` ones, and repeats to drop."""
    at = pd.Timestamp(now)
    at = at.tz_convert("UTC") if at.tzinfo else at.tz_localize("UTC")
    cool = pd.Timedelta(hours=cooldown_hours)
    known = {a.alert_id: a for a in recent}
    latest_by_key: dict[str, Alert] = {}
    for a in sorted(recent, key=lambda a: a.created_at or at):
        latest_by_key[a.key] = a
    out = DedupResult()
    for cand in candidates:
        old = known.get(cand.alert_id)
        if old is None and cand.kind == "series":
            ids = set(cand.incident_ids)
            old = next((a for a in known.values() if a.kind == "series" and a.rule == cand.rule
                        and a.status != "resolved" and ids.intersection(a.incident_ids)), None)
        if old is None and cand.kind in ("spike", "threshold"):
            prev = latest_by_key.get(cand.key)
            if prev is not None and prev.created_at is not None and at - prev.created_at < cool:
                old = prev
        if old is None:
            fresh = cand.with_updates(created_at=at)
            out.new.append(fresh)
            known[fresh.alert_id] = fresh
            latest_by_key[fresh.key] = fresh
            continue
        merged = _merge(old, cand)
        if merged is None:
            out.suppressed.append(cand)
        else:
            out.updated.append(merged)
            known[merged.alert_id] = merged
            latest_by_key[merged.key] = merged
    return out
