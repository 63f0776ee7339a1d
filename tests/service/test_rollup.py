"""The hourly rollup answers aggregate queries exactly as the store does, or declines."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from crimelens.filters import IncidentFilter
from crimelens.service.rollup import CountsRollup, hourly_counts_keys
from crimelens.store.duckdb import DuckDBStore
from tests.service.conftest import Env

BYS = [[], ["category", "category_group"], ["day", "time_precision"], ["week", "time_precision"],
       ["month", "time_precision"], ["hour", "weekday", "time_precision"], ["day", "category", "time_precision"],
       ["source"], ["weekday", "source", "category"]]
FILTERS = [
    IncidentFilter(),
    IncidentFilter(include_non_crime=True),
    IncidentFilter(start=datetime(2023, 3, 1, tzinfo=UTC), end=datetime(2024, 1, 1, tzinfo=UTC)),
    IncidentFilter(start=datetime(2023, 11, 5, 7, tzinfo=UTC)),  # hour-aligned, across a DST change
    IncidentFilter(categories=("violent",), sources=("chicago",)),
    IncidentFilter(categories=("burglary", "theft"), end=datetime(2023, 9, 1, tzinfo=UTC)),
    IncidentFilter(sources=("madison",)),
    IncidentFilter(start=datetime(2030, 1, 1, tzinfo=UTC)),  # nothing
]


def _normalise(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = pd.to_datetime(out[col]).astype("datetime64[ns]")
        elif pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].astype("int64")
        else:
            out[col] = out[col].astype(object)
    return out.reset_index(drop=True)


@pytest.fixture(scope="module")
def store(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> DuckDBStore:
    db = tmp_path_factory.mktemp("rollup") / "store.duckdb"
    shutil.copy(template_store, db)
    return DuckDBStore(str(db), read_only=True)


@pytest.mark.parametrize("zone", ["America/Chicago", "Europe/London", "UTC"])
def test_rollup_matches_the_store_for_every_supported_query(store: DuckDBStore, zone: str) -> None:
    hourly = store.counts(hourly_counts_keys(), IncidentFilter(include_non_crime=True), tz="UTC")
    rollup = CountsRollup(hourly, zone)
    assert 0 < len(rollup) < int(hourly["count"].sum())  # it aggregates
    checked = 0
    for by in BYS:
        for flt in FILTERS:
            got = rollup.counts(by, flt)
            assert got is not None, (by, flt)
            want = store.counts(by, flt, tz=zone)
            pd.testing.assert_frame_equal(_normalise(got), _normalise(want), check_like=False, obj=f"{by} {flt}")
            checked += 1
    assert checked == len(BYS) * len(FILTERS)


def test_rollup_declines_what_it_cannot_answer_exactly(store: DuckDBStore) -> None:
    hourly = store.counts(hourly_counts_keys(), IncidentFilter(include_non_crime=True), tz="UTC")
    rollup = CountsRollup(hourly, "America/Chicago")
    assert rollup.counts(["district"], IncidentFilter()) is None  # not a rollup key
    assert rollup.counts(["crs", "cell:250"], IncidentFilter()) is None
    assert rollup.counts(["day"], IncidentFilter(areas={"district": ("004",)})) is None
    assert rollup.counts(["day"], IncidentFilter(located=True)) is None
    assert rollup.counts(["day"], IncidentFilter(start=datetime(2023, 3, 1, 0, 30, tzinfo=UTC))) is None
    india = CountsRollup(hourly, "Asia/Kolkata")  # +05:30: hours do not start on local hours
    assert not india.exact and india.counts(["hour"], IncidentFilter()) is None


def test_service_aggregates_come_from_the_rollup_and_follow_new_data(env: Env, tmp_path: Path) -> None:
    from tests.conftest import CHICAGO_HEADER
    from tests.service.conftest import chicago_rows, write_rows

    h = env.auth("analyst")
    svc = env.app.state.svc
    before = env.client.get("/api/v1/aggregates/categories?include_non_crime=true", headers=h).json()["rows"]
    gen = svc.rt.generation
    assert any(key[0] == gen for key in svc.rt.rollups._data)  # built and used by that request
    total = sum(r["count"] for r in before)
    assert total == int(svc.rt.reader().execute("SELECT count(*) AS n FROM incidents")["n"].iloc[0])
    path = write_rows(tmp_path / "more.csv", chicago_rows(40, seed=99, start_id=30_000_000), CHICAGO_HEADER)
    with path.open("rb") as fh:
        r = env.client.post("/api/v1/ingest", headers=h, files={"file": ("more.csv", fh, "text/csv")},
                            data={"preset": "chicago"})
    assert r.status_code in (200, 202), r.text
    svc.jobs.wait()
    after = env.client.get("/api/v1/aggregates/categories?include_non_crime=true", headers=h).json()["rows"]
    assert sum(r["count"] for r in after) == total + 40
    assert svc.rt.generation > gen
