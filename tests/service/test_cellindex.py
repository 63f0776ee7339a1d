"""The service's in-memory hot spot cell index (service/cellindex.py) gives exactly the store's cell
counts, on DuckDB and on PostgreSQL, and declines the filters it cannot answer exactly."""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from crimelens.filters import IncidentFilter
from crimelens.service import cellindex
from tests.service.conftest import Env


def _day(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=UTC)


FILTERS = [
    IncidentFilter(),
    IncidentFilter(start=_day("2023-06-01"), end=_day("2024-06-01")),
    IncidentFilter(start=_day("2024-01-01"), end=_day("2024-03-01"), categories=("burglary", "theft")),
    IncidentFilter(start=_day("2023-01-01"), categories=("violent",)),
    IncidentFilter(end=_day("2024-02-01"), include_non_crime=True),
    IncidentFilter(sources=("chicago",), located=True),
    IncidentFilter(sources=("madison",)),
    IncidentFilter(start=_day("2024-05-01"), end=_day("2024-05-02")),
    IncidentFilter(kinds=("crime", "stop", "arrest")),
    IncidentFilter(end=_day("0177-02-13")),  # far dates (no nanosecond timestamp) are answered, not a 500
    IncidentFilter(start=_day("9000-01-01")),
]


def _store_counts(env: Env, flt: IncidentFilter, cell: float) -> pd.DataFrame:
    with env.app.state.svc.rt.lease() as store:
        got: pd.DataFrame = store.counts(["crs", f"cell:{cell:g}"], flt)
    return got.dropna(subset=["crs"]).reset_index(drop=True)


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    cols = ["crs", "cell_x", "cell_y", "count"]
    return [tuple(r) for r in a[cols].astype(object).itertuples(index=False)] == \
        [tuple(r) for r in b[cols].astype(object).itertuples(index=False)]


@pytest.mark.parametrize("cell", [250.0, 500.0])
def test_index_counts_equal_the_store(env: Env, cell: float) -> None:
    rt = env.app.state.svc.rt
    index = cellindex.build(rt.lease, cell)
    assert len(index) > 2000
    nonempty = 0
    for flt in FILTERS:
        got = index.counts(flt, cell)
        assert got is not None, flt
        want = _store_counts(env, flt, cell)
        assert _same(got, want), (flt, got.head(), want.head())
        nonempty += int(len(want) > 0)
    assert nonempty >= 6


def test_index_declines_what_it_cannot_answer_exactly(env: Env) -> None:
    index = cellindex.build(env.app.state.svc.rt.lease, 250.0)
    assert index.counts(IncidentFilter(areas={"district": ("004",)}), 250.0) is None
    assert index.counts(IncidentFilter(start=datetime(2024, 1, 1, 6, tzinfo=UTC)), 250.0) is None
    assert index.counts(IncidentFilter(), 500.0) is None  # built for another size


def test_ready_builds_in_the_background_once_per_generation(env: Env) -> None:
    rt: Any = env.app.state.svc.rt
    assert cellindex.ready(rt, 250.0) is None  # the first caller does not wait for the build
    deadline = time.monotonic() + 30
    while (index := cellindex.ready(rt, 250.0)) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert index is not None and cellindex.ready(rt, 250.0) is index
    rt.bump()  # a load: a new generation gets a new index
    assert cellindex.ready(rt, 250.0) is None
    while (again := cellindex.ready(rt, 250.0)) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # (and the build is done before the runtime closes)
    assert again is not None and again is not index and len(again) == len(index)
