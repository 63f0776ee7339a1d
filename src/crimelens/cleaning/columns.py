"""Arrow column helpers for :func:`~crimelens.cleaning.clean.clean_chunk`.

Raw chunks arrive as Arrow tables of strings and the canonical table leaves as Arrow, so the
text fields go from one to the other with Arrow's compute kernels instead of a round trip
through Python objects. Where a cleaning step works on pandas (times, coordinates,
categories), :func:`as_series` hands it the same Arrow buffers as a ``string`` Series.

Every helper reproduces exactly what the pandas code it replaced did (pandas' own string
methods on ``string[pyarrow]`` call these same kernels).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Column: TypeAlias = pa.Array | pa.ChunkedArray

_TRUE = pa.array(["true", "t", "yes", "y", "1", "arrest"])
_FALSE = pa.array(["false", "f", "no", "n", "0"])
_NULL_BOOL = pa.scalar(None, pa.bool_())


def field_text(columns: Sequence[Column]) -> Column:
    """One field's text: its raw columns trimmed and joined by a space; empty text is null.

    A single column keeps its nulls; several columns are joined with nulls as empty strings.
    """
    if len(columns) == 1:
        s = pc.utf8_trim_whitespace(columns[0])
    else:
        parts = [pc.fill_null(pc.utf8_trim_whitespace(c), "") for c in columns]
        s = pc.utf8_trim_whitespace(pc.binary_join_element_wise(*parts, " "))
    out: Column = pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)
    return out


def as_series(values: Column) -> pd.Series:
    """Arrow strings as a ``string`` (pyarrow-backed, ``pd.NA``) Series on a RangeIndex, without a copy."""
    return pd.Series(pd.arrays.ArrowStringArray(values))


def arrow_strings(s: pd.Series) -> Column:
    """A Series of strings as Arrow strings with nulls; a ``string`` Series' own buffers are reused."""
    if isinstance(s.dtype, pd.StringDtype):
        out: Column = pa.array(s, type=pa.string(), from_pandas=True)
        return out
    return pa.array(s.astype(object).where(s.notna(), None), type=pa.string())


def strings(values: pd.Series | np.ndarray | None, n: int) -> pa.Array:
    """Python strings (None/NaN as null) as an Arrow string array; ``None`` gives ``n`` nulls."""
    if values is None:
        return pa.nulls(n, pa.string())
    return pa.array(values, type=pa.string(), from_pandas=True)


def constant(value: Any, n: int, type_: pa.DataType) -> pa.Array:
    """``n`` copies of ``value`` (null when it is ``None``)."""
    return pa.repeat(pa.scalar(value, type=type_), n)


def booleans(values: Column) -> Column:
    """Yes/no text (``true``, ``Y``, ``1``, ``arrest``, ``false``, ``N``...) as booleans; null otherwise."""
    low = pc.utf8_lower(pc.utf8_trim_whitespace(values))
    yes = pc.is_in(low, value_set=_TRUE)
    no = pc.is_in(low, value_set=_FALSE)
    out: Column = pc.if_else(yes, True, pc.if_else(no, False, _NULL_BOOL))
    return out


def json_objects(table: pa.Table) -> pa.Array:
    """Each row of a table of strings as one JSON object (null values as ``null``), column-wise."""
    pieces: list[Any] = []
    for i, (name, col) in enumerate(zip(table.column_names, table.columns, strict=True)):
        esc = col
        if pc.any(pc.match_substring_regex(col, r'["\\\x00-\x1f]')).as_py():
            for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
                esc = pc.replace_substring(esc, a, b)
            esc = pc.replace_substring_regex(esc, r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd")
        lead = ("{" if i == 0 else ",") + json.dumps(name) + ":"
        quoted = pc.binary_join_element_wise(lead + '"', esc, '"', "")
        pieces.append(pc.if_else(pc.is_null(col), lead + "null", quoted))
    pieces.append(constant("}", table.num_rows, pa.string()))
    joined: pa.Array = pc.binary_join_element_wise(*pieces, "")
    return joined
