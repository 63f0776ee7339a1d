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
        s = _trimmed(columns[0])
    else:
        parts = [pc.fill_null(_trimmed(c), "") for c in columns]
        s = pc.utf8_trim_whitespace(pc.binary_join_element_wise(*parts, " "))
    if not len(s) or pc.min(pc.binary_length(s)).as_py() != 0:  # no empty text (lengths come from offsets)
        return s
    out: Column = pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)
    return out


def _trimmed(values: Column) -> Column:
    """``utf8_trim_whitespace``, skipped when no value starts or ends with a space or a non-ASCII byte.

    Looks at the first and last byte of each value through the offsets; a byte of 0x80 or more
    may begin or end a Unicode space (U+00A0, U+3000...), so it sends the column to the kernel.
    """
    for chunk in values.chunks if isinstance(values, pa.ChunkedArray) else [values]:
        if not pa.types.is_string(chunk.type) or _edges_may_be_space(chunk):
            return pc.utf8_trim_whitespace(values)
    return values


def _edges_may_be_space(chunk: pa.Array) -> bool:
    """Whether a value may start or end with whitespace.

    Arrow's whitespace on ASCII is Python's ``str.isspace()`` (bytes 9-13 and 28-32); any byte of
    0x80 or more may begin or end a Unicode space. Every byte up to 0x20 is flagged, whitespace
    or not, which can only cost a needless trim.
    """
    _, offsets_buf, data_buf = chunk.buffers()
    if data_buf is None or not len(chunk):
        return False
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[chunk.offset: chunk.offset + len(chunk) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)
    if not len(data):
        return False
    # Empty and null values have nothing to trim; they read a neighbour's edge byte here, which
    # can only raise a false alarm (the kernel then runs and finds nothing), never hide a space.
    for edge in (data.take(offsets[:-1], mode="clip"), data.take(offsets[1:] - 1, mode="clip")):
        if edge.min() <= 0x20 or edge.max() >= 0x80:
            return True
    return False


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
    """Each row of a table of strings as one JSON object (null values as ``null``), column-wise.

    One join builds every row: the keys and punctuation are constant arguments between the
    columns' escaped values, and only a column that has nulls needs a per-row choice between
    ``"value"`` and ``null``.
    """
    args: list[Any] = []
    literal = ""
    for i, (name, col) in enumerate(zip(table.column_names, table.columns, strict=True)):
        esc = col
        if _may_need_escaping(col):
            for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
                esc = pc.replace_substring(esc, a, b)
            esc = pc.replace_substring_regex(esc, r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd")
        literal += ("{" if i == 0 else ",") + json.dumps(name) + ":"
        if col.null_count == 0:
            args += [literal + '"', esc]
            literal = '"'
        else:
            args += [literal, pc.fill_null(pc.binary_join_element_wise('"', esc, '"', ""), "null")]
            literal = ""
    if not args:
        return constant("{}", table.num_rows, pa.string())
    args.append(literal + "}")
    joined: pa.Array = pc.binary_join_element_wise(*args, "")
    return joined


def _may_need_escaping(col: Column) -> bool:
    """Whether any value may hold a quote, a backslash or a control character.

    Scans the raw UTF-8 bytes behind the column (a byte below 0x80 is always its own character),
    which is an order of magnitude faster than a regex over each value. Only the bytes of the
    (possibly sliced) array's own values are read.
    """
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    for chunk in chunks:
        if pa.types.is_null(chunk.type):
            continue
        if not (pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type)):
            return True  # raw columns are text; anything else takes the escaping pass
        _, offsets_buf, data = chunk.buffers()
        if data is None or not len(chunk):
            continue
        width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
        offsets = np.frombuffer(offsets_buf, dtype=width)
        first, last = int(offsets[chunk.offset]), int(offsets[chunk.offset + len(chunk)])
        values = np.frombuffer(data, dtype=np.uint8)[first:last]
        if values.size and values.min() < 0x20:  # a control character
            return True
        raw = values.tobytes()
        if b'"' in raw or b"\\" in raw:  # byte searches (memchr), far cheaper than a lookup per byte
            return True
    return False
