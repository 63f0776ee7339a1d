"""Cell suppression for published count tables (SECURITY.md PRV-03).

**Primary suppression** hides every cell with ``0 < count < k`` (default ``k = 10``), margins
included. **Complementary suppression** then hides further cells so that no hidden cell can be
worked out from what is published: a table is a set of additive relations (each row's cells sum
to its row total, each column's to its column total, the totals to the grand total), and

1. every relation that hides anything hides at least two cells (otherwise the hidden one is the
   total minus the rest): the complement is the cell with the smallest count among those whose
   other relation already hides something (so no new lone hidden cell appears), else the
   smallest overall, zeros last (hiding a zero protects little);
2. every primary cell's *feasible interval* — its smallest and largest value over all
   non-negative tables that agree with the published cells — must be at least ``protection``
   wide (default ``k``); while one is not, the smallest published cell in its row or column is
   hidden too and the check repeats. Intervals come from linear programming
   (:func:`feasible_intervals`: :func:`scipy.optimize.linprog`, HiGHS, on each connected group
   of hidden cells), or for two-way tables with margins, exactly and much faster, from maximum
   flows (:func:`flow_intervals`).

This is the "audit" of Statistics Canada's and Eurostat's practice (τ-ARGUS), with a greedy
choice of complements rather than an optimal one: it may hide more than the minimum, never
less than the audit requires. Tables released separately that share margins (linked tables) are
not protected jointly; publish one table per release, or protect them together as one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.optimize import linprog
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, maximum_flow

from crimelens.exceptions import InputError

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]
TOTAL = "all"


@dataclass(frozen=True, slots=True)
class Relation:
    """One additive constraint: the cells ``parts`` (flat indices) sum to the cell ``total``."""

    parts: IntArray
    total: int

    @property
    def cells(self) -> IntArray:
        """Every cell in the relation, parts then total."""
        return np.append(self.parts, self.total)


@dataclass(frozen=True, slots=True)
class SuppressedTable:
    """A count table with its suppression pattern and the audit of it.

    Attributes
    ----------
    counts : DataFrame
        The true counts, with a ``"all"`` total row/column where margins are published.
    suppressed, primary : DataFrame of bool
        Hidden cells, and those hidden because ``0 < count < k``.
    lower, upper : DataFrame of float
        Each primary cell's feasible interval given the published cells (NaN elsewhere; ``inf``
        when unbounded): exact for one-way tables and two-way tables with margins, otherwise an
        interval inside the exact one that is at least ``protection`` wide when it passes.
    k, protection : int, float
        The threshold and the interval width each primary cell needs.
    """

    counts: pd.DataFrame
    suppressed: pd.DataFrame
    primary: pd.DataFrame
    lower: pd.DataFrame
    upper: pd.DataFrame
    k: int
    protection: float

    def published(self) -> pd.DataFrame:
        """The table as released: counts with hidden cells as ``<NA>``."""
        return self.counts.astype("Int64").mask(self.suppressed)

    @property
    def n_primary(self) -> int:
        """Cells hidden because their count is below ``k``."""
        return int(self.primary.to_numpy().sum())

    @property
    def n_suppressed(self) -> int:
        """All hidden cells."""
        return int(self.suppressed.to_numpy().sum())

    @property
    def protected(self) -> bool:
        """True when every primary cell's feasible interval is at least ``protection`` wide."""
        width = (self.upper - self.lower).to_numpy()[self.primary.to_numpy()]
        return bool(np.all(width >= self.protection - 1e-6))

    def to_long(self, row_name: str = "row", col_name: str = "column") -> pd.DataFrame:
        """One row per cell: the two keys, ``count`` (``<NA>`` when hidden) and ``suppressed``."""
        n_r, n_c = self.counts.shape
        return pd.DataFrame({
            row_name: np.repeat(self.counts.index.to_numpy(), n_c),
            col_name: np.tile(self.counts.columns.to_numpy(), n_r),
            "count": pd.array(self.published().to_numpy().ravel(), dtype="Int64"),
            "suppressed": self.suppressed.to_numpy().ravel(),
        })

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: threshold, cells, primary and complementary suppressions."""
        return {
            "k": self.k, "protection": self.protection, "cells": int(self.counts.size),
            "primary_suppressed": self.n_primary, "complementary_suppressed": self.n_suppressed - self.n_primary,
            "suppressed_incidents": int(self.counts.to_numpy()[self.suppressed.to_numpy()
                                        & ~self._margin_mask()].sum()),
            "protected": self.protected,
        }

    def _margin_mask(self) -> BoolArray:
        m = np.zeros(self.counts.shape, dtype=bool)
        if TOTAL in self.counts.index:
            m[self.counts.index.get_loc(TOTAL), :] = True
        if TOTAL in self.counts.columns:
            m[:, self.counts.columns.get_loc(TOTAL)] = True
        return m


def _range(a_eq: Any, b_eq: FloatArray, target: int) -> tuple[float, float]:
    """Smallest and largest value of variable ``target`` subject to ``a_eq x = b_eq``, ``x >= 0``."""
    a_dense = a_eq.toarray() if hasattr(a_eq, "toarray") else np.asarray(a_eq)
    n = a_dense.shape[1]
    if a_dense.shape[0] == 1 and n > 1 and abs(a_dense.sum()) == n and a_dense[0, 0] * b_eq[0] >= 0:
        return 0.0, abs(float(b_eq[0]))  # one relation whose hidden cells are all on one side: [0, |b|]
    c = np.zeros(n)
    c[target] = 1.0
    lo = linprog(c, A_eq=a_dense, b_eq=b_eq, bounds=(0, None), method="highs")
    hi = linprog(-c, A_eq=a_dense, b_eq=b_eq, bounds=(0, None), method="highs")
    return (float(lo.fun) if lo.status == 0 else 0.0), (-float(hi.fun) if hi.status == 0 else np.inf)


def feasible_intervals(values: npt.ArrayLike, suppressed: npt.ArrayLike, relations: list[Relation],
                       cells: npt.ArrayLike | None = None, *, need: float | None = None
                       ) -> tuple[FloatArray, FloatArray]:
    """Smallest and largest value of hidden cells over all non-negative consistent tables.

    Parameters
    ----------
    values : array_like
        True counts, flat.
    suppressed : array_like of bool
        Hidden cells, flat.
    relations : list of Relation
        The table's additive constraints.
    cells : array_like of int, optional
        Hidden cells to compute (default all hidden cells).
    need : float, optional
        Shortcut for audits: first solve with only the hidden cells near each cell free (two
        relations away) and the others fixed at their true values. That range lies inside the
        exact one, so when it is at least ``need`` wide it is returned as is; otherwise the exact
        range over the cell's whole connected group of hidden cells is computed.

    Returns
    -------
    lower, upper : ndarray
        Per flat cell; NaN for published cells and cells not asked for, ``inf`` when unbounded.
        Exact without ``need``; with it, an interval inside the exact one, at least ``need`` wide
        or exact.
    """
    v = np.asarray(values, dtype=float).ravel()
    sup = np.asarray(suppressed, dtype=bool).ravel()
    lower, upper = np.full(v.size, np.nan), np.full(v.size, np.nan)
    want = np.flatnonzero(sup) if cells is None else np.asarray(cells, dtype=np.int64)
    hidden = np.flatnonzero(sup)
    col_of = np.full(v.size, -1, dtype=np.int64)
    col_of[hidden] = np.arange(len(hidden))
    rows, cols, coef, rhs = [], [], [], []
    for r, rel in enumerate(relations):
        cells_r, sign = rel.cells, np.append(np.ones(len(rel.parts)), -1.0)
        h = sup[cells_r]
        rhs.append(-float(np.dot(sign[~h], v[cells_r[~h]])))
        rows.extend([r] * int(h.sum()))
        cols.extend(col_of[cells_r[h]].tolist())
        coef.extend(sign[h].tolist())
    a = coo_matrix((coef, (rows, cols)), shape=(len(relations), len(hidden))).tocsr()
    b = np.asarray(rhs)
    vh = v[hidden]
    link = (abs(a).T @ abs(a)).tocsr()  # hidden cells sharing a relation
    groups = connected_components(link, directed=False)[1] if len(hidden) else np.zeros(0, dtype=np.int64)
    for c in want:
        if not sup[c]:
            continue
        j = int(col_of[c])
        if need is not None:
            near = np.unique(link[link[j].indices].indices) if link[j].nnz else np.asarray([j])
            free = np.zeros(len(hidden), dtype=bool)
            free[near] = True
            used = np.flatnonzero(np.asarray(abs(a[:, near]).sum(axis=1)).ravel() > 0)
            if used.size == 0:
                lower[c], upper[c] = 0.0, np.inf
                continue
            b_loc = b[used] - a[used] @ np.where(free, 0.0, vh)
            lo, hi = _range(a[used][:, near], b_loc, int(np.flatnonzero(near == j)[0]))
            if hi - lo >= need - 1e-6:
                lower[c], upper[c] = lo, hi
                continue
        members = np.flatnonzero(groups == groups[j])
        used = np.flatnonzero(np.asarray(abs(a[:, members]).sum(axis=1)).ravel() > 0)
        if used.size == 0:
            lower[c], upper[c] = 0.0, np.inf
            continue
        lower[c], upper[c] = _range(a[used][:, members], b[used], int(np.flatnonzero(members == j)[0]))
    return lower, upper


def flow_intervals(values: npt.ArrayLike, suppressed: npt.ArrayLike,
                   cells: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Exact feasible intervals in a two-way table with margins, by maximum flow.

    The last row and column of ``values`` are the totals. A change to the hidden cells that keeps
    every row and column sum is a circulation on the bipartite graph of rows and columns (a
    total's edge runs the other way), in which a cell can fall by at most its value and rise
    without limit. A cell rises by the largest flow that can return around it, and falls by the
    largest flow the other way (at most its value) — the same answer as the linear programmes of
    :func:`feasible_intervals`, computed with :func:`scipy.sparse.csgraph.maximum_flow`.

    Parameters
    ----------
    values : array_like
        ``(rows + 1) × (columns + 1)`` counts, totals last.
    suppressed : array_like of bool
        Hidden cells, same shape.
    cells : array_like of int
        Flat indices of the hidden cells to compute.

    Returns
    -------
    lower, upper : ndarray
        Flat; NaN for cells not asked for, ``inf`` when unbounded.
    """
    v = np.rint(np.asarray(values, dtype=float)).astype(np.int64)
    hidden = np.asarray(suppressed, dtype=bool)
    n_r, n_c = v.shape
    sign_r, sign_c = np.ones(n_r), np.ones(n_c)
    sign_r[-1], sign_c[-1] = -1.0, -1.0
    big = int(v.sum()) + 1
    p, q = np.nonzero(hidden)
    up = sign_r[p] * sign_c[q] > 0
    src = np.concatenate([p, n_r + q])
    dst = np.concatenate([n_r + q, p])
    cap = np.concatenate([np.where(up, big, v[p, q]), np.where(up, v[p, q], big)]).astype(np.int32)
    n = n_r + n_c
    graph = csr_matrix((cap, (src, dst)), shape=(n, n))
    graph.sort_indices()

    def arc(a: int, b: int) -> int:
        lo, hi = graph.indptr[a], graph.indptr[a + 1]
        return int(lo + np.searchsorted(graph.indices[lo:hi], b))

    lower, upper = np.full(v.size, np.nan), np.full(v.size, np.nan)
    for c in np.asarray(cells, dtype=np.int64).tolist():
        i, j = divmod(c, n_c)
        data = graph.data.copy()
        data[arc(i, n_r + j)] = 0
        data[arc(n_r + j, i)] = 0
        g = csr_matrix((data, graph.indices, graph.indptr), shape=(n, n))
        forward = int(maximum_flow(g, i, n_r + j).flow_value)  # row i to column j
        backward = int(maximum_flow(g, n_r + j, i).flow_value)
        rise, fall = (backward, forward) if sign_r[i] * sign_c[j] > 0 else (forward, backward)
        upper[c] = np.inf if rise >= big else float(v[i, j] + rise)
        lower[c] = float(v[i, j] - min(int(v[i, j]), fall))
    return lower, upper


def _choose(candidates: IntArray, v: FloatArray, sup: BoolArray, cell_relations: list[list[int]],
            relations: list[Relation], exclude: int) -> int:
    """The complement to hide among ``candidates``: non-zero before zero, then one whose other
    relations already hide something (it creates no new lone hidden cell), then the smallest."""
    def lonely(c: int) -> int:
        return sum(1 for r in cell_relations[c] if r != exclude and not sup[relations[r].cells].any())

    return int(min(candidates.tolist(), key=lambda c: (v[c] == 0, lonely(c), v[c], c)))


def protect(values: npt.ArrayLike, relations: list[Relation], *, k: int = 10, protection: float | None = None,
            shape: tuple[int, int] | None = None, margins: bool = False,
            ) -> tuple[BoolArray, BoolArray, FloatArray, FloatArray]:
    """Primary and complementary suppression of a flat table with additive ``relations``.

    Parameters
    ----------
    values : array_like
        Non-negative counts, flat (margins included as ordinary cells).
    relations : list of Relation
        Additive constraints among the cells.
    k : int
        Cells with ``0 < count < k`` are primary suppressions.
    protection : float, optional
        Minimum width of each primary cell's feasible interval (default ``k``).
    shape : (int, int), optional
        The values are a two-way table of this shape (row-major) whose relations are its rows
        and columns.
    margins : bool
        With ``shape``: the last row and column are totals; intervals are then computed by
        maximum flow (:func:`flow_intervals`), exact and much faster than linear programmes.

    Returns
    -------
    suppressed, primary : ndarray of bool
    lower, upper : ndarray
        Feasible intervals of primary cells (NaN elsewhere).
    """
    v = np.asarray(values, dtype=float).ravel()
    if k < 1:
        raise InputError("suppression threshold k must be at least 1")
    if (v < 0).any() or not np.isfinite(v).all():
        raise InputError("counts must be finite and non-negative")
    need = float(k if protection is None else protection)
    primary = (v > 0) & (v < k)
    sup = primary.copy()
    passed = np.zeros(v.size, dtype=bool)
    lower, upper = np.full(v.size, np.nan), np.full(v.size, np.nan)
    cell_relations: list[list[int]] = [[] for _ in range(v.size)]
    for r, rel in enumerate(relations):
        for c in rel.cells.tolist():
            cell_relations[c].append(r)
    while True:
        added = False
        for r, rel in enumerate(relations):  # rule 1: never a lone hidden cell in a relation
            cells = rel.cells
            if sup[cells].sum() == 1 and (~sup[cells]).any():
                sup[_choose(cells[~sup[cells]], v, sup, cell_relations, relations, r)] = True
                added = True
        if added:
            continue
        # hiding more cells only widens intervals, so a cell that passed once stays protected
        audit = np.flatnonzero(primary & ~passed)
        if shape is not None and margins:
            lo, hi = flow_intervals(v.reshape(shape), sup.reshape(shape), audit)
        else:
            lo, hi = feasible_intervals(v, sup, relations, audit, need=need)
        lower[audit], upper[audit] = lo[audit], hi[audit]
        passed[audit] = hi[audit] - lo[audit] >= need - 1e-6
        failing = [c for c in audit if not passed[c]]
        touched: set[int] = set()
        for c in failing:  # rule 2: widen the interval through the cell's row or column
            if touched.intersection(cell_relations[c]):
                continue  # a complement was just added next to it: audit again first
            cand = np.unique(np.concatenate([relations[r].cells for r in cell_relations[c]] or [np.zeros(0, int)]))
            cand = cand[~sup[cand]]
            if cand.size:
                pick = _choose(cand, v, sup, cell_relations, relations, -1)
                sup[pick] = True
                touched.update(cell_relations[pick])
                added = True
        if not added:
            return sup, primary, lower, upper


def _frame(flat: npt.ArrayLike, like: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(flat).reshape(like.shape), index=like.index, columns=like.columns)


def suppress_table(table: pd.DataFrame, *, k: int = 10, margins: bool = True,
                   protection: float | None = None) -> SuppressedTable:
    """Suppress a two-way count table (e.g. area × period), with or without its margins.

    Parameters
    ----------
    table : DataFrame
        Non-negative integer counts; rows and columns are the two keys.
    k : int
        Threshold: cells (and margins) with ``0 < count < k`` are hidden.
    margins : bool
        Publish row totals, column totals and the grand total (labelled ``"all"``), protected
        together with the cells.
    protection : float, optional
        Minimum feasible-interval width of each primary cell (default ``k``).

    Returns
    -------
    SuppressedTable
    """
    body = table.fillna(0).astype(float)
    if margins:
        full = body.copy()
        full[TOTAL] = body.sum(axis=1)
        full.loc[TOTAL] = full.sum(axis=0)
        n_r, n_c = full.shape
        idx = np.arange(full.size).reshape(n_r, n_c)
        relations = [Relation(idx[i, :-1], int(idx[i, -1])) for i in range(n_r)]
        relations += [Relation(idx[:-1, j], int(idx[-1, j])) for j in range(n_c)]
    else:
        full, relations = body, []
    sup, primary, lower, upper = protect(full.to_numpy().ravel(), relations, k=k, protection=protection,
                                         shape=full.shape, margins=margins)
    return SuppressedTable(full.astype(np.int64), _frame(sup, full), _frame(primary, full), _frame(lower, full),
                           _frame(upper, full), k, float(k if protection is None else protection))


def suppress_counts(counts: pd.Series, *, k: int = 10, total: bool = True,
                    protection: float | None = None) -> SuppressedTable:
    """Suppress a one-way count table (e.g. counts per area), with or without its total.

    Parameters
    ----------
    counts : Series
        Non-negative counts indexed by the key.
    k : int
        Threshold: counts (and the total) with ``0 < count < k`` are hidden.
    total : bool
        Publish the total (column ``"all"``), protected together with the cells.
    protection : float, optional
        Minimum feasible-interval width of each primary cell (default ``k``).

    Returns
    -------
    SuppressedTable
        A one-row table (row ``"count"``), columns the keys (plus ``"all"``).
    """
    row = counts.fillna(0).astype(float).to_frame("count").T
    if total:
        row[TOTAL] = row.sum(axis=1)
        relations = [Relation(np.arange(row.shape[1] - 1), row.shape[1] - 1)]
    else:
        relations = []
    sup, primary, lower, upper = protect(row.to_numpy().ravel(), relations, k=k, protection=protection)
    return SuppressedTable(row.astype(np.int64), _frame(sup, row), _frame(primary, row), _frame(lower, row),
                           _frame(upper, row), k, float(k if protection is None else protection))
