"""The located incidents in memory, to answer hot spot cell counts without a query per window.

A cold ``/hotspots`` request (a new date window) needs incidents per square cell of the window:
on PostgreSQL at 2M incidents that query takes about a second (an index-only scan of a year's
rows and a hash aggregate) while Gi* on the counts takes about 50 ms, and 32 clients asking for
new windows at once queue on the database. The service keeps instead, per data generation, one
row per located incident with a CRS — its UTC day number, its cell at the service's hot spot cell
size (``floor(x / size)``, computed by the store's own SQL expression), and integer codes of CRS,
category, category group, source and record kind — sorted by day (about 40 bytes a row, 80 MB at
2M). A window is two binary searches; the filter is a few vectorised masks; the cells are counted
with ``numpy.bincount``. Other cell sizes go to the store (so memory stays one index per process).
The answer equals ``store.counts(["crs", "cell:<size>"], flt)`` without its null-CRS rows
(hot spots drop those), checked against both stores in the tests.

Filters it cannot answer exactly return ``None`` and the caller asks the store: area filters,
and window bounds that are not UTC midnights.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crimelens.filters import IncidentFilter, utc
from crimelens.service.coded import Coded, filter_mask
from crimelens.store.sql import cell_keys

log = logging.getLogger(__name__)
_EPOCH = date(1970, 1, 1)
_COLUMNS = ("day", "crs", "cell_x", "cell_y", "category", "category_group", "source", "record_kind", "located")
_CODED = ("crs", "category", "category_group", "source", "record_kind")
_DAY_SQL = {"postgres": "CAST(floor(extract(epoch FROM occurred_at) / 86400) AS INTEGER)",
            "duckdb": "CAST(floor(epoch(occurred_at) / 86400) AS INTEGER)"}
_MAX_BINS = 50_000_000  # larger key ranges are counted with numpy.unique instead


def index_sql(dialect: str, cell_m: float) -> str:
    """The rows the index is built from: one per located incident with a CRS (an index-only scan of
    the covering index on PostgreSQL); the cells as ``Store.counts`` has them (:func:`cell_keys`)."""
    cx, cy = cell_keys(float(f"{cell_m:g}"))  # the size as ``cell:{cell_m:g}`` gives it to counts_sql
    return (f"SELECT {_DAY_SQL[dialect]} AS day, crs, {cx}, {cy}, category, category_group, source, "  # noqa: S608 -- constant text and the store's own cell expressions
            "record_kind, lat IS NOT NULL AS located FROM incidents WHERE x IS NOT NULL AND crs IS NOT NULL")


def _fetch_postgres(conn: Any, cell_m: float) -> pa.Table:
    """The rows through ``COPY ... TO STDOUT`` as CSV, parsed by Arrow (psycopg hands the copy over a
    message per row: about 7 s for 2M rows on this box, in the background thread of :func:`ready`)."""
    buf = io.BytesIO()
    with conn.cursor() as cur, cur.copy(f"COPY ({index_sql('postgres', cell_m)}) TO STDOUT WITH (FORMAT csv)") as cp:
        for chunk in cp:
            buf.write(chunk)
    coded = pa.dictionary(pa.int32(), pa.string())
    types = {"day": pa.int32(), "cell_x": pa.int64(), "cell_y": pa.int64(), "located": pa.bool_(),
             **{name: coded for name in _CODED}}
    opts = pacsv.ConvertOptions(column_types=types, true_values=["t"], false_values=["f"],
                                strings_can_be_null=False)
    if not buf.tell():
        return pa.table({n: pa.array([], type=types[n]) for n in _COLUMNS})
    return pacsv.read_csv(io.BytesIO(buf.getvalue()), read_options=pacsv.ReadOptions(column_names=list(_COLUMNS)),
                          convert_options=opts)


def fetch(store: Any, cell_m: float) -> pa.Table:
    """The index rows of ``store``: a PostgreSQL read view (it has a psycopg ``conn``) or a DuckDB one."""
    if hasattr(store, "conn"):
        return _fetch_postgres(store.conn, cell_m)
    got: pa.Table = store.con.sql(index_sql("duckdb", cell_m)).to_arrow_table()
    return got


def build(lease: Callable[[], AbstractContextManager[Any]], cell_m: float) -> CellIndex:
    """A :class:`CellIndex` of the store at ``cell_m``, read on a connection from ``lease`` (released
    before the arrays are encoded)."""
    with lease() as store:
        rows = fetch(store, cell_m)
    return CellIndex(rows, cell_m)


_building: set[tuple[int, int, float]] = set()
_building_lock = threading.Lock()


def ready(rt: Any, cell_m: float) -> CellIndex | None:
    """The runtime's index of the current data generation at ``cell_m``, or ``None`` while it is being
    built: the first call of a generation starts the build in a background thread (one per
    runtime, generation and size) and the caller asks the store meanwhile, so no request waits
    for the build. ``rt`` is the service's :class:`~crimelens.service.runtime.Runtime`."""
    key = ("cell-index", cell_m)
    generation = rt.generation
    hit, value = rt.cache.peek((generation, key))
    if hit:
        index: CellIndex = value
        return index
    flight = (id(rt), generation, cell_m)
    with _building_lock:
        if flight in _building:
            return None
        _building.add(flight)

    def run() -> None:
        try:
            if not rt.closed:
                rt.cached(key, lambda: build(rt.lease, cell_m))
        except Exception:  # the store answers instead; the next generation tries again
            if not rt.closed:
                log.warning("hot spot cell index not built", exc_info=True)
        finally:
            with _building_lock:
                _building.discard(flight)
            with suppress(ValueError):
                rt.background.remove(threading.current_thread())

    thread = threading.Thread(target=run, name="cell-index", daemon=True)
    rt.background.append(thread)  # Runtime.close joins it before closing the connection it reads on
    thread.start()
    return None


def _codes(col: pa.ChunkedArray) -> Coded:
    """Integer codes whose order is the values' order (so the CRS sorts as the store's ORDER BY)."""
    enc = pc.dictionary_encode(col).combine_chunks()
    values = [str(v) for v in enc.dictionary.to_pylist()]
    rank = np.argsort(np.argsort(np.array(values, dtype=object), kind="stable"), kind="stable")
    codes = rank[enc.indices.to_numpy(zero_copy_only=False)] if values else np.zeros(len(col), np.int64)
    return Coded(np.asarray(codes, dtype=np.int64), np.asarray(sorted(values), dtype=object))


class CellIndex:
    """Located incidents as arrays sorted by UTC day, answering hot spot cell counts at ``cell_m``."""

    def __init__(self, rows: pa.Table, cell_m: float) -> None:
        self.cell_m = cell_m
        day = rows["day"].to_numpy().astype(np.int64)
        if len(day) and (np.diff(day) < 0).any():
            rows = rows.take(pa.array(np.argsort(day, kind="stable")))
        self.day = rows["day"].to_numpy().astype(np.int64)
        self.cell_x = rows["cell_x"].to_numpy().astype(np.int64)
        self.cell_y = rows["cell_y"].to_numpy().astype(np.int64)
        self.located = rows["located"].to_numpy(zero_copy_only=False).astype(bool)
        self.keys = {name: _codes(rows[name]) for name in _CODED}

    def __len__(self) -> int:
        return len(self.day)

    @staticmethod
    def _day(bound: datetime | None, default: int) -> int | None:
        if bound is None:
            return default
        ts = utc(bound)  # any unit: a far date (year 177) has no nanosecond value
        if (ts.hour, ts.minute, ts.second, ts.microsecond, ts.nanosecond) != (0, 0, 0, 0, 0):
            return None  # not a UTC midnight: the store answers
        return (ts.date() - _EPOCH).days

    def counts(self, flt: IncidentFilter, cell_m: float) -> pd.DataFrame | None:
        """``crs``, ``cell_x``, ``cell_y``, ``count`` for ``flt`` (ordered as the store's ``counts``
        orders them), or ``None`` when the store must answer (another cell size, area filters,
        bounds off UTC midnight)."""
        if flt.areas or cell_m != self.cell_m:
            return None
        lo, hi = self._day(flt.start, np.iinfo(np.int64).min), self._day(flt.end, np.iinfo(np.int64).max)
        if lo is None or hi is None:
            return None
        i, j = np.searchsorted(self.day, [lo, hi], side="left")
        rows = slice(i, j)
        mask = filter_mask(self.keys, flt, rows)
        keep = np.ones(j - i, dtype=bool) if mask is None else mask
        if flt.located:
            keep &= self.located[rows]
        k = self.keys
        return _group(k["crs"].codes[i:j][keep], self.cell_x[i:j][keep], self.cell_y[i:j][keep], k["crs"].values)


def _group(crs: npt.NDArray[np.int64], cx: npt.NDArray[np.int64], cy: npt.NDArray[np.int64],
           names: npt.NDArray[Any]) -> pd.DataFrame:
    """Counts per (crs, cx, cy), sorted by the three keys."""
    if not len(crs):
        return pd.DataFrame({"crs": pd.Series([], dtype=object), "cell_x": np.array([], np.int64),
                             "cell_y": np.array([], np.int64), "count": np.array([], np.int64)})
    x0, y0 = int(cx.min()), int(cy.min())
    nx, ny = int(cx.max()) - x0 + 1, int(cy.max()) - y0 + 1
    key = (crs * nx + (cx - x0)) * ny + (cy - y0)
    if len(names) * nx * ny <= _MAX_BINS:
        n = np.bincount(key, minlength=len(names) * nx * ny)
        cells = np.flatnonzero(n)
        n = n[cells]
    else:
        cells, n = np.unique(key, return_counts=True)
    c, rest = np.divmod(cells, nx * ny)
    gx, gy = np.divmod(rest, ny)
    return pd.DataFrame({"crs": np.asarray(names, dtype=object)[c], "cell_x": gx + x0, "cell_y": gy + y0,
                         "count": n.astype(np.int64)})
