"""Integer-coded columns and the incident filter as a mask over them, shared by the service's
in-memory answers (the hourly rollup, :mod:`crimelens.service.rollup`, and the hot spot cell
index, :mod:`crimelens.service.cellindex`), so both apply the filter's rules one way, as
``Store.counts`` does: the categories asked for, else everything but ``non_crime`` unless it is
included; the sources; the record kinds where that column is coded."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from crimelens.filters import IncidentFilter
from crimelens.schema import RECORD_KINDS

Rows = npt.NDArray[np.int64] | slice
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Coded:
    """Integer codes per row and the distinct values they index, in sorted order (so code order
    is value order and grouped results come out sorted like the store's ``ORDER BY``)."""

    codes: npt.NDArray[np.int64]
    values: npt.NDArray[Any]

    def isin(self, wanted: Sequence[str], rows: Rows) -> Mask:
        """Whether each of ``rows`` holds one of ``wanted``."""
        codes = np.flatnonzero(np.isin(self.values, np.asarray(list(wanted), dtype=object)))
        return np.isin(self.codes[rows], codes)


def filter_mask(keys: Mapping[str, Coded], flt: IncidentFilter, rows: Rows) -> Mask | None:
    """The rows ``flt`` keeps among ``rows`` (None: all of them). ``keys`` holds ``category``,
    ``category_group`` and ``source``, and ``record_kind`` where the rows hold several kinds (the
    rollup is built from the default kinds and answers only for them, so it codes none)."""
    conds: list[Mask] = []
    cats = flt.category_names()
    if cats:
        conds.append(keys["category"].isin(cats, rows))
    elif not flt.include_non_crime:
        conds.append(~keys["category_group"].isin(["non_crime"], rows))
    if flt.sources:
        conds.append(keys["source"].isin(list(flt.sources), rows))
    if "record_kind" in keys and set(flt.kinds) != set(RECORD_KINDS):
        conds.append(keys["record_kind"].isin(list(flt.kinds), rows))
    if not conds:
        return None
    keep: Mask = np.logical_and.reduce(conds)
    return keep
