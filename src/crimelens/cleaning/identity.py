"""Stable identities: content-hash ids for sources without one, and record hashes.

A source without incident ids (Toronto, police.uk anti-social behaviour) gets a content hash of
its mapped raw values. With ``id_strategy = "content_ordinal"`` the n-th identical row in a
file gets ordinal n, so two genuinely separate but identical-looking records (two assaults at
the same intersection and hour) stay two incidents, while re-loading the same file still yields
the same ids. With ``"content"`` identical rows collapse into one (use it for sources known to
repeat rows, such as the Kaggle San Francisco file).

``row_hash`` is a 64-bit hash of the whole published row; a record that comes back with the
same id and a different hash is an update.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_SEP = "\x1f"
_KEY_A = "crimelens-id-v1a"
_KEY_B = "crimelens-row-v1"
_NULL_AS_NUL = pc.JoinOptions(null_handling="replace", null_replacement="\x00")


def joined(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Join the given raw string columns into one string per row (nulls as NUL characters)."""
    table = pa.table({c: pa.array(frame[c].astype("string"), type=pa.string()) for c in columns})
    out = joined_arrow(table, columns) if columns else pa.array([""] * len(frame), type=pa.string())
    return pd.Series(out.to_numpy(zero_copy_only=False), index=frame.index, dtype=object)


def joined_arrow(table: pa.Table, columns: list[str]) -> pa.Array | pa.ChunkedArray:
    """:func:`joined` for an Arrow table of strings, staying in Arrow."""
    if not columns:
        return pa.array([""] * table.num_rows, type=pa.string())
    out: pa.Array | pa.ChunkedArray = pc.binary_join_element_wise(
        *[table.column(c) for c in columns], _SEP, options=_NULL_AS_NUL
    )
    return out


def hash64(values: pd.Series | pa.Array | pa.ChunkedArray, key: str = _KEY_B) -> np.ndarray:
    """A keyed 64-bit SipHash of each string, as signed int64 (stable across runs and machines).

    The hash is that of each string's UTF-8 bytes; Arrow strings are handed over as ``bytes``
    objects, which skips decoding them into Python strings and encoding them back (same hash).
    """
    if isinstance(values, pd.Series):
        objects = values.to_numpy(dtype=object)
    else:
        objects = values.cast(pa.binary()).to_numpy(zero_copy_only=False)
    h = pd.util.hash_array(objects, hash_key=key, categorize=False)
    return h.view(np.int64)


def _hex_ids(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``h`` + 32 hex digits per row from two uint64 hashes, formatted without a Python loop."""
    raw = np.empty((len(a), 2), dtype=">u8")
    raw[:, 0], raw[:, 1] = a, b
    digits = np.frombuffer(raw.tobytes().hex().encode("ascii"), dtype="S32")
    return np.char.add("h", digits.astype("U32")).astype(object)


def content_ids(text: pd.Series, *, ordinal: bool, seen: dict[int, int] | None = None) -> pd.Series:
    """Content-hash ids (``h`` + 32 hex digits); with ``ordinal`` the n-th repeat gets ``-n``.

    ``seen`` carries repeat counts across the chunks of one file.
    """
    objects = text.to_numpy(dtype=object)
    a = pd.util.hash_array(objects, hash_key=_KEY_A, categorize=False)
    b = pd.util.hash_array(objects, hash_key=_KEY_B, categorize=False)
    ids = pd.Series(_hex_ids(a, b), index=text.index, dtype=object)
    if not ordinal:
        return ids
    nth = ids.groupby(ids, sort=False).cumcount().to_numpy()
    if seen is not None:
        key = a.view(np.int64)
        base = np.fromiter((seen.get(k, 0) for k in key.tolist()), dtype=np.int64, count=len(key))
        nth = nth + base
        uniq, counts = np.unique(key, return_counts=True)
        for k, c in zip(uniq.tolist(), counts.tolist(), strict=True):
            seen[k] = seen.get(k, 0) + c
    suffix = pd.Series(nth, index=text.index)
    return ids.where(suffix == 0, ids + "-" + suffix.astype(str))
