"""Fit a mapping to the header a file actually has: required fields, optional ones, notes.

Portal exports do not always carry every column a preset names: an API query may select fewer
columns, a spreadsheet re-export may drop one. A mapping's **required** fields are the time of
the record (``occurred_at`` and any ``occurred_at_hour`` / ``occurred_at_time`` part), an
offence or record type (``offense`` or ``category_text``: at least one must remain), a location
when ``require_location`` is set, and whatever the mapping lists under ``required``. Every other
field is optional: when its columns are missing the field is left empty and a note names it.
Without the id column, ids fall back to content hashes (``content_ordinal``) with a note.

``strict`` keeps the refusal of any missing column (the stream and sync jobs use it, because
there a change of columns means the feed drifted).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from crimelens.exceptions import MappingError
from crimelens.sources.mapping import Mapping

#: Fields a record cannot do without (besides a mapping's own ``required`` list).
TIME_FIELDS = ("occurred_at", "occurred_at_hour", "occurred_at_time")
OFFENCE_FIELDS = ("offense", "category_text")


@dataclass(frozen=True, slots=True)
class Fit:
    """A mapping reduced to the columns a header has, with what was left out and why."""

    mapping: Mapping
    missing: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """Whether the header has every column the original mapping reads."""
        return not self.missing


def _norm(name: str) -> str:
    return name.strip().lower()


def fit_mapping(mapping: Mapping, header: list[str], *, strict: bool = False, file: str = "") -> Fit:
    """Fit ``mapping`` to ``header`` (see the module docstring).

    Raises
    ------
    MappingError
        When a required field's columns are missing, or any column is missing with ``strict``.
    """
    missing = mapping.missing_columns(header)
    if not missing:
        return Fit(mapping, (), ())
    where = f"{file}: " if file else ""
    if strict:
        raise MappingError(f"{where}mapping {mapping.name!r} names columns the file lacks: {', '.join(missing)}")
    gone = set(map(_norm, missing))
    lost = {f for f, cols in mapping.fields.items() if any(_norm(c) in gone for c in cols)}
    for pair in (("lat", "lon"), ("x", "y")):  # half a coordinate pair is no location
        if lost & set(pair):
            lost |= set(pair) & set(mapping.fields)
    needed = {f for f in (*TIME_FIELDS, *mapping.required) if f in mapping.fields} & lost
    offence = [f for f in OFFENCE_FIELDS if f in mapping.fields]
    if offence and set(offence) <= lost:
        needed |= set(offence)
    kept = {f: c for f, c in mapping.fields.items() if f not in lost}
    if mapping.require_location and not ({"lat", "lon"} <= set(kept) or {"x", "y"} <= set(kept)):
        needed |= lost & {"lat", "lon", "x", "y"}
    if needed:
        cols = sorted({c for f in needed for c in mapping.fields[f] if _norm(c) in gone})
        raise MappingError(
            f"{where}mapping {mapping.name!r}: the file lacks required columns: {', '.join(cols)} "
            f"(for {', '.join(sorted(needed))})"
        )
    flags = tuple(fl for fl in mapping.flags if fl[1] is None or _norm(fl[1]) not in gone)
    notes = []
    optional = sorted(lost - {"incident_id"})
    if optional:
        notes.append(f"optional columns missing ({', '.join(missing)}): left empty: {', '.join(optional)}")
    dropped_flags = sorted(fl[0] for fl in mapping.flags if fl not in flags)
    if dropped_flags:
        notes.append(f"flags without their column: {', '.join(dropped_flags)}")
    strategy = mapping.id_strategy
    if "incident_id" in lost:
        strategy = "content_ordinal"
        notes.append(f"no id column ({', '.join(mapping.fields['incident_id'])}): ids are content hashes "
                     "(content_ordinal)")
    reduced = dataclasses.replace(mapping, fields=kept, flags=flags, id_strategy=strategy)
    return Fit(reduced, tuple(missing), tuple(notes))
