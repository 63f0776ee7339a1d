"""Pick the preset that fits a file's header."""

from __future__ import annotations

from crimelens.exceptions import InputError
from crimelens.sources.mapping import Mapping, list_presets, load_preset


def _norm(c: str) -> str:
    return c.strip().lower()


def detect_preset(header: list[str]) -> Mapping:
    """Return the preset whose columns the header holds.

    A preset fits when every column it reads (and every ``detect`` column) is in the header; among
    fitting presets the one reading the most columns wins, so a specific preset beats a generic one.

    Raises
    ------
    InputError
        If no preset fits; the message names the closest presets and what they miss.
    """
    have = {_norm(c) for c in header}
    scored: list[tuple[float, int, Mapping, list[str]]] = []
    for name in list_presets():
        m = load_preset(name)
        need = {_norm(c) for c in (*m.columns(), *m.detect)}
        missing = sorted(need - have)
        overlap = len(need & have) / max(len(need | have), 1)
        scored.append((overlap, len(need), m, missing))
    fitting = [s for s in scored if not s[3]]
    if fitting:
        return max(fitting, key=lambda s: (s[1], s[0]))[2]
    scored.sort(key=lambda s: s[0], reverse=True)
    hints = "; ".join(f"{m.name} (missing {', '.join(miss[:3])})" for _, _, m, miss in scored[:3])
    raise InputError(
        f"unknown header: no preset fits these columns. Closest: {hints}. "
        "Give --preset NAME or --mapping FILE.toml"
    )
