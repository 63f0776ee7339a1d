"""The incident filter every store, CLI command and API route shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from crimelens.exceptions import InputError
from crimelens.schema import RECORD_KINDS
from crimelens.taxonomy import expand

#: Every record kind, for ``IncidentFilter(kinds=ALL_KINDS)``.
ALL_KINDS: tuple[str, ...] = tuple(RECORD_KINDS)


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    """Which incidents to read.

    ``start`` is inclusive and ``end`` exclusive (UTC). ``categories`` may name leaves, roll-ups
    or groups (``violent``); they are expanded with :func:`crimelens.taxonomy.expand`. Non-crime
    categories (anti-social behaviour, warrants...) are left out unless ``include_non_crime``
    or unless they are named explicitly. ``areas`` filters area columns, e.g.
    ``{"district": ["004"]}``. ``located`` keeps only incidents with coordinates.

    ``kinds`` are the record kinds read (``crime``, ``stop``, ``arrest``, ``call_for_service``,
    ``sensor``): crimes only by default, so no analysis counts a stop or an arrest as a crime
    unless it is asked to. Every store and the in-memory :meth:`apply` read this one field.
    """

    start: datetime | None = None
    end: datetime | None = None
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    areas: dict[str, tuple[str, ...]] = field(default_factory=dict)
    include_non_crime: bool = False
    located: bool = False
    kinds: tuple[str, ...] = ("crime",)

    def __post_init__(self) -> None:
        bad = [k for k in self.kinds if k not in RECORD_KINDS]
        if bad or not self.kinds:
            raise InputError(f"unknown record kind {bad[0] if bad else ''!r}; use one of {', '.join(RECORD_KINDS)}")

    def category_names(self) -> list[str]:
        """Expanded category names, or an empty list for 'all'."""
        return expand(self.categories) if self.categories else []

    def apply(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Apply the filter to an in-memory canonical frame (stores push it down to SQL instead)."""
        m = pd.Series(True, index=frame.index)
        if self.start is not None:
            m &= frame["occurred_at"] >= utc(self.start)
        if self.end is not None:
            m &= frame["occurred_at"] < utc(self.end)
        cats = self.category_names()
        if cats:
            m &= frame["category"].isin(cats)
        elif not self.include_non_crime:
            m &= frame["category_group"] != "non_crime"
        if self.sources:
            m &= frame["source"].isin(self.sources)
        for col, vals in self.areas.items():
            m &= frame[col].isin(vals)
        if self.located:
            m &= frame["lat"].notna()
        if set(self.kinds) != set(RECORD_KINDS):
            # frames built for the first schema have no record_kind: they hold crimes
            kind = frame["record_kind"].fillna("crime") if "record_kind" in frame.columns else "crime"
            m &= pd.Series(kind, index=frame.index).isin(self.kinds)
        return frame[m]


def utc(when: datetime | str) -> pd.Timestamp:
    """``when`` as a UTC timestamp; naive values are taken as UTC."""
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")
