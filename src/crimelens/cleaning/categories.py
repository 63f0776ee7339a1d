"""Map a source's offence text onto the canonical taxonomy.

Matching order for each distinct value: exact (case-insensitive, trimmed) keys of the mapping's
``[categories]`` table, then its ``re:`` patterns in file order, then its ``default``. A value
that matches nothing becomes ``unknown`` and is counted in the ingest report as unmapped, so no
offence silently disappears from the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crimelens.sources.mapping import Mapping
from crimelens.taxonomy import BY_NAME


@dataclass(slots=True)
class MappedCategories:
    """Per-row canonical labels, per-row flags from patterns, and counts of unmapped values."""

    labels: pd.DataFrame  # category, category_group, category_precision, crimes_against, ucr_part1
    flags: dict[str, pd.Series]
    unmapped: dict[str, int]


def map_categories(text: pd.Series, mapping: Mapping) -> MappedCategories:
    """Map each row's category text (already joined from the mapping's columns)."""
    key = text.astype("string").str.strip().str.lower().fillna("")
    codes, uniques = pd.factorize(key, sort=False)
    cats: list[str] = []
    unmapped: dict[str, int] = {}
    counts = pd.Series(codes).value_counts()
    for i, value in enumerate(uniques):
        cat = _lookup(str(value), mapping)
        if cat is None:
            cat = "unknown"
            unmapped[str(value) or "<empty>"] = int(counts.get(i, 0))
        cats.append(cat)
    per_unique = pd.DataFrame(
        {
            "category": cats,
            "category_group": [BY_NAME[c].group for c in cats],
            "category_precision": [BY_NAME[c].precision for c in cats],
            "crimes_against": [BY_NAME[c].crimes_against for c in cats],
            "ucr_part1": [BY_NAME[c].ucr_part1 for c in cats],
        }
    )
    labels = per_unique.iloc[codes].reset_index(drop=True)
    labels.index = text.index
    flags: dict[str, pd.Series] = {}
    for name, column, pattern in mapping.flags:
        if column is not None:
            continue  # column flags are evaluated by the caller on their own column
        hit = pd.Series([bool(pattern.search(str(v))) for v in uniques], dtype=bool)
        flags[name] = pd.Series(hit.to_numpy()[codes], index=text.index)
    return MappedCategories(labels, flags, unmapped)


def _lookup(value: str, mapping: Mapping) -> str | None:
    if value in mapping.categories:
        return mapping.categories[value]
    for pattern, cat in mapping.patterns:
        if pattern.search(value):
            return cat
    return mapping.default_category
