"""Anonymous public routes (SEC-09's exception): off by default, suppressed counts only (PRV-03)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.service.conftest import Env, make_env


@pytest.fixture
def public_env(template_store: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template_store, tmp_path, public_enabled=True, public_k=5, rate_public_per_minute=12)


def test_public_routes_are_off_by_default(env: Env) -> None:
    for path in ("/api/v1/public/areas", "/api/v1/public/grid"):
        r = env.client.get(path)
        assert r.status_code == 404, (path, r.status_code)
        assert r.headers["cache-control"] == "no-store"


def test_public_area_table_suppresses_small_cells_and_matches_the_store(public_env: Env) -> None:
    r = public_env.client.get("/api/v1/public/areas?area=district&period=month")  # no token
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["k"] == 5 and body["protection"]["guarantee_met"] is True
    rows = pd.DataFrame(body["rows"])
    shown = rows[~rows["suppressed"]]
    assert not ((shown["count"] > 0) & (shown["count"] < 5)).any()  # nothing small is published
    assert rows["suppressed"].any()  # the test store has small district-months
    assert rows.loc[rows["suppressed"], "count"].isna().all()
    # published values are the true counts (checked against the store through an analyst's view)
    h = public_env.auth("analyst")
    truth = public_env.client.get("/api/v1/aggregates/areas?column=district", headers=h).json()["rows"]
    totals = rows[(rows["period"] == "all") & ~rows["suppressed"] & ~rows["area"].isin(["all", "(none)"])]
    by_area = {t["area"]: t["count"] for t in truth}
    assert len(totals) > 0
    for a, n in zip(totals["area"], totals["count"], strict=True):
        assert by_area.get(a) == n, a
    # a suppressed row never stands alone: complementary suppression leaves >= 2 per row with any
    for _, part in rows[rows["period"] != "all"].groupby("area"):
        assert part["suppressed"].sum() != 1


def test_public_grid_never_shows_fewer_than_k(public_env: Env) -> None:
    r = public_env.client.get("/api/v1/public/grid?cell_m=250")
    assert r.status_code == 200, r.text
    feats = r.json()["features"]
    assert feats
    counts = [f["properties"]["count"] for f in feats if not f["properties"].get("suppressed")]
    assert counts and min(c for c in counts if c) >= 5
    assert all(f["geometry"]["type"] == "Polygon" for f in feats)


def test_public_routes_are_rate_limited_and_reject_unknown_categories(public_env: Env) -> None:
    assert public_env.client.get("/api/v1/public/areas?category=nonsense").status_code == 422
    codes = [public_env.client.get("/api/v1/public/areas").status_code for _ in range(14)]
    assert codes.count(429) >= 1 and codes[0] == 200
