"""Text columns and CSV text for millions of rows, built with Arrow kernels instead of Python loops.

pandas 3 stores strings in Arrow; building a column from a Python object array costs about a
second per million rows, and ``DataFrame.to_csv`` several seconds per column. Here columns are
made by Arrow ``take`` from a small dictionary (a category, an offence, a block address) or by
Arrow casts, handed to pandas without copying, and CSV text is assembled column-wise with Arrow
string kernels, quoting a field only when it needs it (RFC 4180), as portals write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: The string dtype this pandas gives text columns by default (object before pandas 3).
STR_DTYPE: Any = pd.Series(["x"]).dtype


def from_arrow(arr: pa.Array | pa.ChunkedArray) -> pd.Series:
    """An Arrow string array as a pandas column of the default string dtype (no copy on pandas 3)."""
    if np.dtype(object) == STR_DTYPE:
        return pd.Series(arr.to_numpy(zero_copy_only=False), dtype=object)
    out: pd.Series = arr.to_pandas(types_mapper=lambda t: STR_DTYPE if pa.types.is_string(t) else None)
    return out


def take(values: Sequence[str | None] | npt.NDArray[Any] | pa.Array, codes: npt.ArrayLike) -> pd.Series:
    """``values[codes]`` as a text column; negative codes give missing values."""
    c = np.asarray(codes, dtype=np.int64)
    neg = c < 0
    idx = pa.array(c, mask=neg) if neg.any() else pa.array(c)
    dictionary = values if isinstance(values, pa.Array) else pa.array(list(values), type=pa.string())
    return from_arrow(dictionary.take(idx))


def constant(value: str | None, n: int) -> pd.Series:
    """A text column holding ``value`` (or nothing) ``n`` times."""
    return take([value], np.zeros(n, dtype=np.int64))


def numbers(values: npt.ArrayLike, prefix: str = "") -> pd.Series:
    """Integers as text, optionally behind a fixed prefix (``"JF"`` + ``"100001"``)."""
    s = pa.array(np.asarray(values, dtype=np.int64)).cast(pa.string())
    if prefix:
        s = pc.binary_join_element_wise(pa.scalar(prefix), s, "")
    return from_arrow(s)


def as_text(col: pd.Series) -> pd.Series:
    """A column as the text a CSV file shows for it (missing stays missing)."""
    return from_arrow(_text(col))


def _text(col: pd.Series) -> pa.Array:
    if pd.api.types.is_bool_dtype(col.dtype):
        return pc.if_else(pa.array(col.astype("boolean"), from_pandas=True), "true", "false")
    arr = pa.array(col, from_pandas=True)
    if pa.types.is_timestamp(arr.type):  # ISO 8601 in UTC, whole seconds (a cast is 40× faster than strftime)
        utc = arr if arr.type.tz is None else arr.cast(pa.timestamp(arr.type.unit))
        plain = utc.cast(pa.timestamp("s"), safe=False).cast(pa.string())
        return pc.binary_join_element_wise(pc.replace_substring(plain, " ", "T", max_replacements=1), "Z", "")
    if pa.types.is_floating(arr.type):
        whole = pc.and_(pc.is_finite(arr), pc.and_(pc.equal(arr, pc.round(arr)), pc.less(pc.abs(arr), 1e15)))
        as_int = pc.if_else(whole, arr, 0.0).cast(pa.int64()).cast(pa.string())
        return pc.if_else(whole, pc.binary_join_element_wise(as_int, ".0", ""), arr.cast(pa.string()))
    return arr.cast(pa.string())


def _field(col: pd.Series) -> pa.Array:
    """One column as CSV field text: missing is empty, text quoted only where needed."""
    text = _text(col)
    if not (pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype)):
        needs = pc.match_substring(text, ",")
        for ch in ('"', "\n", "\r"):
            needs = pc.or_(needs, pc.match_substring(text, ch))
        if pc.any(needs).as_py():
            quoted = pc.binary_join_element_wise("\"", pc.replace_substring(text, "\"", "\"\""), "\"", "")
            text = pc.if_else(needs, quoted, text)
    return pc.fill_null(text, "")


def csv_header(columns: Sequence[str]) -> str:
    """A CSV header line (names quoted only where needed)."""
    def q(name: str) -> str:
        return f'"{name.replace(chr(34), chr(34) * 2)}"' if any(ch in name for ch in '",\r\n') else name
    return ",".join(q(c) for c in columns) + "\n"


def write_csv(frame: pd.DataFrame, path: str | Path, chunk_rows: int = 200_000) -> None:
    """Write ``frame`` as CSV (``\\n`` line ends; gzip when ``path`` ends in ``.gz``)."""
    p = Path(path)
    sink = pa.CompressedOutputStream(str(p), "gzip") if p.suffix == ".gz" else pa.OSFile(str(p), "wb")
    with sink:
        sink.write(csv_header([str(c) for c in frame.columns]).encode("utf-8"))
        for lo in range(0, len(frame), chunk_rows):
            part = frame.iloc[lo:lo + chunk_rows]
            lines = pc.binary_join_element_wise(*[_field(part[c]) for c in part.columns], ",")
            lines = pc.binary_join_element_wise(lines, "\n", "")
            if isinstance(lines, pa.ChunkedArray):
                lines = lines.combine_chunks()
            offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[lines.offset:lines.offset + len(lines) + 1]
            data = lines.buffers()[2]
            sink.write(data.slice(int(offsets[0]), int(offsets[-1] - offsets[0])))
