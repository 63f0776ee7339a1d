"""Primary and complementary cell suppression, audited by linear programming (SECURITY.md PRV-03)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from crimelens.exceptions import InputError
from crimelens.governance.mapcounts import protect_grid
from crimelens.governance.suppression import (
    TOTAL,
    Relation,
    feasible_intervals,
    flow_intervals,
    suppress_counts,
    suppress_table,
)


def test_small_cell_is_suppressed_and_not_derivable_from_the_total() -> None:
    counts = pd.Series([40, 3, 25, 60, 18], index=list("abcde"))
    # hiding only the small cell gives nothing away... except the total minus the rest
    row = np.append(counts.to_numpy(), counts.sum()).astype(float)
    only = np.zeros(6, dtype=bool)
    only[1] = True
    lo, hi = feasible_intervals(row, only, [Relation(np.arange(5), 5)])
    assert lo[1] == hi[1] == 3
    table = suppress_counts(counts, k=10)
    pub = table.published().iloc[0]
    assert pd.isna(pub["b"]) and pub[TOTAL] == counts.sum()
    assert table.n_primary == 1 and table.n_suppressed == 2
    assert pd.isna(pub["e"])  # the complement is the smallest other cell
    assert table.lower.loc["count", "b"] == 0 and table.upper.loc["count", "b"] == 21
    assert table.protected


def test_one_way_protection_interval_needs_a_third_cell_when_two_small_cells_sum_below_it() -> None:
    table = suppress_counts(pd.Series([3, 50, 60, 2, 100], index=list("abcde")), k=10)
    assert table.suppressed.iloc[0].tolist() == [True, True, False, True, False, False]
    assert table.upper.loc["count", "a"] - table.lower.loc["count", "a"] >= 10
    minimal = suppress_counts(pd.Series([3, 50, 60, 2, 100], index=list("abcde")), k=10, protection=1)
    assert minimal.n_suppressed == 2 and minimal.protected  # two small cells hide each other


def test_one_way_without_total_suppresses_only_small_cells() -> None:
    table = suppress_counts(pd.Series([40, 3, 25]), k=10, total=False)
    assert table.n_suppressed == 1 and TOTAL not in table.counts.columns


def test_two_way_complementary_suppression() -> None:
    t = pd.DataFrame([[12, 3, 15], [20, 25, 30], [11, 14, 2]], index=["A", "B", "C"], columns=["w1", "w2", "w3"])
    s = suppress_table(t, k=10)
    sup = s.suppressed.to_numpy()
    for line in (*sup, *sup.T):  # every row and column (margins included) hides 0 or >= 2 cells
        assert line.sum() != 1
    assert s.primary.loc["A", "w2"] and s.primary.loc["C", "w3"]
    # the cheap cycle A/C × w2/w3 rather than whole rows
    assert s.n_suppressed == 4
    for cell in (("A", "w2"), ("C", "w3")):
        assert s.upper.loc[cell] - s.lower.loc[cell] >= 10
        assert s.lower.loc[cell] <= t.loc[cell] <= s.upper.loc[cell]
    assert s.published().loc[TOTAL, TOTAL] == t.to_numpy().sum()


def test_small_margins_are_suppressed_too() -> None:
    t = pd.DataFrame([[20, 30, 40], [2, 3, 1], [15, 25, 35]], index=list("ABC"), columns=list("xyz"))
    s = suppress_table(t, k=10)
    assert s.suppressed.loc["B", TOTAL] and s.suppressed.loc["B"].all()
    assert s.protected
    sup = s.suppressed.to_numpy()
    assert all(line.sum() != 1 for line in (*sup, *sup.T))


def test_nothing_suppressed_when_all_counts_reach_k() -> None:
    t = pd.DataFrame([[10, 0, 15], [20, 25, 0]], index=list("AB"), columns=list("xyz"))
    s = suppress_table(t, k=10)
    assert s.n_suppressed == 0 and s.published().notna().all().all()
    assert suppress_counts(pd.Series([10, 11, 0]), k=10).n_suppressed == 0


def test_bad_counts() -> None:
    with pytest.raises(InputError):
        suppress_counts(pd.Series([-1, 5]))
    with pytest.raises(InputError):
        suppress_counts(pd.Series([1, 5]), k=0)


@settings(max_examples=40, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(2, 5), st.integers(2, 5)), elements=st.integers(0, 30)),
       st.sampled_from([5, 10]))
def test_property_no_lone_suppression_and_no_small_published_cell(values: np.ndarray, k: int) -> None:
    s = suppress_table(pd.DataFrame(values), k=k)
    sup, pub = s.suppressed.to_numpy(), s.published().to_numpy(dtype=float, na_value=np.nan)
    assert all(line.sum() != 1 for line in (*sup, *sup.T))
    shown = pub[~np.isnan(pub)]
    assert not ((shown > 0) & (shown < k)).any()
    assert s.protected
    true = s.counts.to_numpy()[s.primary.to_numpy()]
    assert (s.lower.to_numpy()[s.primary.to_numpy()] <= true + 1e-6).all()
    assert (s.upper.to_numpy()[s.primary.to_numpy()] >= true - 1e-6).all()


@settings(max_examples=60, deadline=None)
@given(arrays(np.int64, st.tuples(st.integers(2, 4), st.integers(2, 4)), elements=st.integers(0, 15)),
       st.integers(0, 2**32 - 1))
def test_property_max_flow_intervals_equal_the_linear_programmes(inner: np.ndarray, seed: int) -> None:
    n_r, n_c = inner.shape
    full = np.zeros((n_r + 1, n_c + 1))
    full[:n_r, :n_c] = inner
    full[:n_r, n_c] = inner.sum(axis=1)
    full[n_r, :] = full[:n_r].sum(axis=0)
    hidden = np.random.default_rng(seed).random(full.shape) < 0.5
    idx = np.arange(full.size).reshape(full.shape)
    relations = [Relation(idx[i, :-1], int(idx[i, -1])) for i in range(n_r + 1)]
    relations += [Relation(idx[:-1, j], int(idx[-1, j])) for j in range(n_c + 1)]
    cells = np.flatnonzero(hidden)
    lp_lo, lp_hi = feasible_intervals(full.ravel(), hidden.ravel(), relations, cells)
    fl_lo, fl_hi = flow_intervals(full, hidden, cells)
    assert np.allclose(lp_lo[cells], fl_lo[cells])
    assert np.array_equal(np.isinf(lp_hi[cells]), np.isinf(fl_hi[cells]))
    finite = np.isfinite(lp_hi[cells])
    assert np.allclose(lp_hi[cells][finite], fl_hi[cells][finite])


def _cells(rng: np.random.Generator) -> pd.DataFrame:
    dense = np.column_stack([rng.integers(0, 4, 600), rng.integers(0, 4, 600)])
    sparse = np.column_stack([rng.integers(8, 32, 60), rng.integers(8, 32, 60)])
    pts = np.vstack([dense, sparse])
    return pd.DataFrame(pts, columns=["cell_x", "cell_y"]).value_counts().rename("count").reset_index()


@pytest.mark.parametrize("method", ["merge", "suppress"])
def test_grid_counts_have_no_small_published_cell(method: str) -> None:
    cells = _cells(np.random.default_rng(0))
    grid = protect_grid(cells, cell_size=100, crs="EPSG:32616", k=10, levels=3, method=method)  # type: ignore[arg-type]
    shown = grid.cells["count"].dropna()
    assert ((shown == 0) | (shown >= 10)).all()
    assert grid.table.protected and grid.total == cells["count"].sum()
    assert len(grid.polygons_wgs84()) == len(grid.cells)
    if method == "merge":  # dense corner keeps 100 m cells, the sparse rest is merged into larger ones
        assert grid.cells["size"].min() == 100 and grid.cells["size"].max() > 100
        assert grid.cells["suppressed"].sum() < protect_grid(cells, cell_size=100, crs="EPSG:32616",
                                                             method="suppress").cells["suppressed"].sum()
