"""``/aggregates/compstat`` caches its all-history daily counts per data generation and filter, so a
new ``as_of`` costs the table, not a store scan; the answer stays byte-identical to computing it
from the store afresh, and a load (a new generation) is seen at once."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from crimelens.filters import IncidentFilter
from crimelens.service import products
from crimelens.service.schemas import CompStatOut
from tests.conftest import CHICAGO_HEADER
from tests.service.conftest import Env, chicago_rows, write_rows

QUERIES = [("", IncidentFilter()), ("source=chicago", IncidentFilter(sources=("chicago",))),
           ("category=burglary&category=theft", IncidentFilter(categories=("burglary", "theft")))]


def _fresh(env: Env, flt: IncidentFilter, as_of: str | None) -> bytes:
    """The answer as the route gave it before the cache: one store scan for this ``as_of``."""
    with env.app.state.svc.rt.lease() as store:
        return CompStatOut(**products.compstat(store, flt, as_of)).model_dump_json(by_alias=True).encode()


def _dates(env: Env) -> list[str | None]:
    with env.app.state.svc.rt.lease() as store:
        span = store.execute("SELECT min(occurred_at) AS a, max(occurred_at) AS b FROM incidents")
    first, last = pd.Timestamp(span["a"].iloc[0]), pd.Timestamp(span["b"].iloc[0])
    days = pd.date_range(first.normalize().tz_localize(None), last.normalize().tz_localize(None), periods=9)
    return [None, *(d.strftime("%Y-%m-%d") for d in days), (last + pd.Timedelta(days=400)).strftime("%Y-%m-%d")]


def _served(env: Env, h: dict[str, str], query: str, as_of: str | None) -> bytes:
    sep = "&" if query else ""
    path = "/api/v1/aggregates/compstat?" + query + (f"{sep}as_of={as_of}" if as_of else "")
    r = env.client.get(path, headers=h)
    assert r.status_code == 200, r.text[:300]
    return r.content


def test_compstat_per_as_of_is_byte_identical_to_a_fresh_scan(env: Env, tmp_path: Path) -> None:
    h = env.auth("analyst")
    rt = env.app.state.svc.rt
    dates = _dates(env)
    before: dict[tuple[str, str | None], bytes] = {}
    for query, flt in QUERIES:
        for as_of in dates:
            got = _served(env, h, query, as_of)
            assert got == _fresh(env, flt, as_of), (query, as_of)
            before[query, as_of] = got
        assert rt.cache.peek((rt.generation, ("cs-counts", repr(flt))))[0]  # one scan kept for the filter
    assert len(set(before.values())) > len(QUERIES) * 3  # the report dates give different tables
    # a load starts a new generation: the cached counts are not reused
    path = write_rows(tmp_path / "more.csv", chicago_rows(300, seed=41, start_id=31_000_000), CHICAGO_HEADER)
    with path.open("rb") as fh:
        r = env.client.post("/api/v1/ingest", headers=h, files={"file": ("more.csv", fh, "text/csv")},
                            data={"preset": "chicago"})
    assert r.status_code in (200, 202), r.text
    env.app.state.svc.jobs.wait()
    changed = 0
    for query, flt in QUERIES:
        for as_of in dates:
            got = _served(env, h, query, as_of)
            assert got == _fresh(env, flt, as_of), (query, as_of)
            changed += got != before[query, as_of]
    assert changed > len(dates)
