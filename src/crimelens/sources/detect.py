"""Pick the preset that fits a file's header."""

from __future__ import annotations

from crimelens.exceptions import InputError, MappingError
from crimelens.sources.fit import Fit, fit_mapping
from crimelens.sources.mapping import Mapping, list_presets, load_preset

#: A preset also fits partly with a single ``detect`` column when the header has at least this many
#: of its columns (a portal query that selected date, offence, description, block and coordinates).
PARTIAL_COLUMNS = 5


def _norm(c: str) -> str:
    return c.strip().lower()


def detect_preset(header: list[str]) -> Mapping:
    """Return the preset that fits the header best, as shipped (see :func:`detect`)."""
    fit = detect(header)
    return load_preset(fit.mapping.name)


def detect(header: list[str]) -> Fit:
    """The preset that fits ``header``, reduced to the columns the header has.

    A preset fits **fully** when every column it reads (and every ``detect`` column) is in the
    header; among full fits the one reading the most columns wins, so a specific preset beats a
    generic one. Failing that, a preset fits **partly** when its required fields are all there
    (:func:`crimelens.sources.fit.fit_mapping`) and at least half of its ``detect`` columns are (or
    one of them and :data:`PARTIAL_COLUMNS` of its columns):
    the partial fit with the most columns present wins, and its notes name what was missing.

    Raises
    ------
    InputError
        If no preset fits; the message names the closest presets and what they miss.
    """
    have = {_norm(c) for c in header}
    scored: list[tuple[float, int, Mapping, list[str]]] = []
    partial: list[tuple[int, float, Fit]] = []
    for name in list_presets():
        m = load_preset(name)
        need = {_norm(c) for c in (*m.columns(), *m.detect)}
        missing = sorted(need - have)
        overlap = len(need & have) / max(len(need | have), 1)
        scored.append((overlap, len(need), m, missing))
        marks = {_norm(c) for c in m.detect}
        if missing and marks and (2 * len(marks & have) >= len(marks)
                                  or (marks & have and len(need & have) >= PARTIAL_COLUMNS)):
            try:
                fit = fit_mapping(m, header)
            except MappingError:
                continue
            partial.append((len(need & have), overlap, fit))
    fitting = [s for s in scored if not s[3]]
    if fitting:
        return Fit(max(fitting, key=lambda s: (s[1], s[0]))[2], (), ())
    if partial:
        best = max(partial, key=lambda p: (p[0], p[1]))[2]
        note = f"detected preset {best.mapping.name!r} with columns missing: {', '.join(best.missing)}"
        return Fit(best.mapping, best.missing, (note, *best.notes))
    scored.sort(key=lambda s: s[0], reverse=True)
    hints = "; ".join(f"{m.name} (missing {', '.join(miss[:3])})" for _, _, m, miss in scored[:3])
    raise InputError(
        f"unknown header: no preset fits these columns. Closest: {hints}. "
        "Give --preset NAME or --mapping FILE.toml"
    )
