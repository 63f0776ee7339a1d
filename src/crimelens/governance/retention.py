"""Retention schedules for incident personal data (SECURITY.md PRV-06).

Personal data of an incident sits in *fields* with a *role*: ``suspect`` and ``victim`` (the
restricted originals and their pseudonyms ``suspect_ref`` / ``victim_ref``) and ``narrative``.
A schedule says how long each role is kept, per offence category:

* ``default_days`` applies to every category without its own entry;
* ``categories`` sets a category's period (``homicide = 36500``);
* ``roles`` caps a role everywhere (``victim = 2555``): the field is kept for the shorter of the
  category's period and the role's cap;
* ``overrides`` sets one (category, role) pair exactly, above both (``[overrides.homicide]
  suspect = 36500``).

A field is *due* when its incident occurred strictly before ``now - days``; a field exactly at
the cut-off is kept. The schedule is data (TOML); :func:`due_fields` is pure, so tests run it
under a frozen clock. Enforcing it (removing the values from the store and caches) is the
service's job (:mod:`crimelens.service.erasure`).

Example TOML::

    default_days = 2555          # seven years
    [categories]
    homicide = 36500
    [roles]
    narrative = 1825
    [overrides.homicide]
    narrative = 36500
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd

from crimelens.exceptions import InputError

#: Personal-field roles and the columns (restricted table, incident table) that hold each.
ROLES: Final[dict[str, tuple[str, ...]]] = {
    "suspect": ("suspect", "suspect_ref"),
    "victim": ("victim", "victim_ref"),
    "narrative": ("narrative",),
}


def _days(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise InputError(f"retention: {where} must be a number of days >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each personal-field role is kept, per category (see the module docstring)."""

    default_days: float = 2555.0
    categories: dict[str, float] = field(default_factory=dict)
    roles: dict[str, float] = field(default_factory=dict)
    overrides: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _days(self.default_days, "default_days")
        for role in [*self.roles, *(r for _, r in self.overrides)]:
            if role not in ROLES:
                raise InputError(f"retention: unknown role {role!r}; roles are {', '.join(ROLES)}")

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RetentionPolicy:
        """From a parsed TOML/JSON document."""
        unknown = set(doc) - {"default_days", "categories", "roles", "overrides"}
        if unknown:
            raise InputError(f"retention: unknown keys {', '.join(sorted(unknown))}")
        for key in ("categories", "roles", "overrides"):
            if not isinstance(doc.get(key, {}), dict):
                raise InputError(f"retention: [{key}] must be a table")
        cats = {str(k): _days(v, f"categories.{k}") for k, v in doc.get("categories", {}).items()}
        roles = {str(k): _days(v, f"roles.{k}") for k, v in doc.get("roles", {}).items()}
        over: dict[tuple[str, str], float] = {}
        for cat, table in doc.get("overrides", {}).items():
            if not isinstance(table, dict):
                raise InputError(f"retention: [overrides.{cat}] must be a table of role = days")
            over.update({(str(cat), str(r)): _days(v, f"overrides.{cat}.{r}") for r, v in table.items()})
        return cls(_days(doc.get("default_days", 2555), "default_days"), cats, roles, over)

    @classmethod
    def from_toml(cls, text: str) -> RetentionPolicy:
        """Parse a TOML schedule."""
        try:
            return cls.from_dict(tomllib.loads(text))
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"retention schedule is not valid TOML: {exc}") from exc

    def days(self, category: str | None, role: str) -> float:
        """How long ``role`` fields of a ``category`` incident are kept."""
        cat = category or ""
        if (cat, role) in self.overrides:
            return self.overrides[(cat, role)]
        base = self.categories.get(cat, self.default_days)
        return min(base, self.roles.get(role, math.inf))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        over: dict[str, dict[str, float]] = {}
        for (cat, role), d in self.overrides.items():
            over.setdefault(cat, {})[role] = d
        return {"default_days": self.default_days, "categories": dict(self.categories), "roles": dict(self.roles),
                "overrides": over}


def due_fields(incidents: pd.DataFrame, policy: RetentionPolicy, now: datetime) -> pd.DataFrame:
    """The (incident, role) pairs whose retention period has passed at ``now``.

    Parameters
    ----------
    incidents : DataFrame
        ``source``, ``incident_id``, ``category``, ``occurred_at`` (tz-aware) of incidents that
        hold personal data.
    policy : RetentionPolicy
    now : datetime
        The (tz-aware) time to judge at.

    Returns
    -------
    DataFrame
        ``source``, ``incident_id``, ``role``, ``occurred_at``, ``cutoff``: one row per field due.
    """
    if now.tzinfo is None:
        raise InputError("retention needs a timezone-aware 'now'")
    cols = ["source", "incident_id", "role", "occurred_at", "cutoff"]
    if incidents.empty:
        return pd.DataFrame(columns=cols)
    occurred = pd.to_datetime(incidents["occurred_at"], utc=True)
    parts = []
    for role in ROLES:
        days = incidents["category"].map(lambda c, r=role: policy.days(c if isinstance(c, str) else None, r))
        cutoff = pd.Series([pd.Timestamp(now) - timedelta(days=float(d)) for d in days], index=incidents.index)
        due = occurred < cutoff
        if due.any():
            parts.append(pd.DataFrame({"source": incidents.loc[due, "source"], "incident_id":
                                       incidents.loc[due, "incident_id"], "role": role,
                                       "occurred_at": occurred[due], "cutoff": cutoff[due]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def cutoffs(policy: RetentionPolicy, categories: list[str], now: datetime) -> dict[str, str]:
    """The cut-off date of each (category, role) present, for reports: ``{"theft/victim": "2019-01-01"}``."""
    out: dict[str, str] = {}
    for cat in categories:
        for role in ROLES:
            out[f"{cat}/{role}"] = (pd.Timestamp(now) - timedelta(days=policy.days(cat, role))).date().isoformat()
    return out
