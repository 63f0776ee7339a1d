"""Which area level a scan uses: the one asked for, else district where incidents have one, else H3.

A scan by district over incidents that carry no district would find no series at all and say
nothing; :func:`choose_level` makes the choice explicit and refuses a level no incident has.
"""

from __future__ import annotations

from typing import Any

from crimelens.alerts.panel import AREA_LEVELS, check_level
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter

#: The levels tried, in order, when none is given.
DEFAULT_LEVELS = ("district", "h3_8")


def located_count(store: Any, level: str, flt: IncidentFilter) -> int:
    """How many incidents matching ``flt`` have a value at ``level`` (a pushed-down count)."""
    if level == "city":
        got = store.counts([], flt)
        return int(got["count"].sum()) if len(got) else 0
    got = store.counts([level], flt)
    return int(got.loc[got[level].notna(), "count"].sum()) if len(got) else 0


def levels_present(store: Any, flt: IncidentFilter) -> dict[str, int]:
    """Every area level with at least one incident, and how many incidents have it."""
    found = {lv: located_count(store, lv, flt) for lv in AREA_LEVELS if lv != "city"}
    return {lv: n for lv, n in found.items() if n}


def choose_level(store: Any, flt: IncidentFilter, given: str | None = None) -> tuple[str, str]:
    """The level to scan and a one-line reason.

    Raises
    ------
    InputError
        For an unknown level, or a level that no incident matching ``flt`` has (the message
        lists the levels that are available).
    """
    if given is not None:
        check_level(given)
        if given == "city" or located_count(store, given, flt):
            return given, "as given"
        present = levels_present(store, flt)
        avail = ", ".join(f"{k} ({v:,})" for k, v in present.items()) or "none"
        raise InputError(f"no incident has a {given}; levels available: {avail}, city")
    for level in DEFAULT_LEVELS:
        n = located_count(store, level, flt)
        if n:
            why = "incidents have districts" if level == "district" else "incidents have no district; H3 resolution 8"
            return level, f"{why} ({n:,} incidents)"
    return "city", "incidents have neither a district nor a location; city-wide"
