"""The choropleth route: grid cells or areas, counts or rates per 1,000 (raw and empirical-Bayes
smoothed), classified by mapclassify on the server with the legend in class order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.service.conftest import Env, make_env

pytestmark = pytest.mark.service
URL = "/api/v1/choropleth"


@pytest.fixture(scope="module")
def city(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from make_env(template_store, tmp_path_factory.mktemp("choro"))


def check_legend(doc: dict[str, Any], k: int) -> None:
    legend = doc["legend"]
    assert [c["cls"] for c in legend] == list(range(1, len(legend) + 1))
    assert 2 <= len(legend) <= k
    uppers = [c["upper"] for c in legend]
    assert uppers == sorted(uppers) and len(set(uppers)) == len(uppers)
    assert sum(c["units"] for c in legend) == len(doc["features"])
    for f in doc["features"]:
        c = legend[f["properties"]["class"] - 1]
        assert c["lower"] - 1e-6 <= f["properties"]["value"] <= c["upper"] + 1e-6


@pytest.mark.parametrize("scheme", ["quantiles", "natural_breaks", "equal_interval"])
def test_grid_counts_classified_in_order(city: Env, scheme: str) -> None:
    h = city.auth("viewer")
    doc = city.client.post(URL, headers=h, json={"layer": "grid", "scheme": scheme, "k": 5}).json()
    check_legend(doc, 5)
    cells = city.client.get("/api/v1/aggregates/cells?cell_m=500", headers=h).json()["features"]
    assert len(doc["features"]) == len(cells)
    assert sum(f["properties"]["value"] for f in doc["features"]) == sum(f["properties"]["count"] for f in cells)


def test_area_rates_and_smoothing(city: Env) -> None:
    h = city.auth("analyst")
    counts = {r["area"]: r["count"] for r in city.client.get("/api/v1/aggregates/areas?column=district",
                                                             headers=h).json()["rows"]}
    outlined = {f["properties"]["area"] for f in city.client.get(
        "/api/v1/aggregates/outlines?column=district", headers=h).json()["features"]}
    # residents: a wide spread so small areas have unstable raw rates
    pop = {a: 200.0 + 4000.0 * i for i, a in enumerate(sorted(outlined))}
    body = {"layer": "district", "measure": "rate", "scheme": "natural_breaks", "k": 4,
            "population": [{"area": a, "population": p} for a, p in pop.items()]}
    raw = city.client.post(URL, headers=h, json=body).json()
    check_legend(raw, 4)
    assert raw["parameters"]["units"] == "incidents per 1,000 residents"
    rate = {f["properties"]["area"]: f["properties"]["value"] for f in raw["features"]}
    assert set(rate) == outlined
    for a, r in rate.items():
        assert r == pytest.approx(counts[a] / pop[a] * 1000, rel=1e-3)
    smooth = city.client.post(URL, headers=h, json={**body, "measure": "smoothed_rate"}).json()
    check_legend(smooth, 4)
    city_rate = sum(counts[a] for a in rate) / sum(pop[a] for a in rate) * 1000
    eb = {f["properties"]["area"]: f["properties"]["value"] for f in smooth["features"]}
    for a in rate:  # empirical Bayes pulls every rate toward the city's, the small areas most
        assert abs(eb[a] - city_rate) <= abs(rate[a] - city_rate) + 1e-6
    smallest = min(pop, key=lambda a: pop[a])
    assert abs(eb[smallest] - rate[smallest]) > 0


def test_bad_requests_are_clear(city: Env) -> None:
    h = city.auth("viewer")
    r = city.client.post(URL, headers=h, json={"layer": "grid", "measure": "rate"})
    assert r.status_code == 422 and "area layer" in r.text
    r = city.client.post(URL, headers=h, json={"layer": "district", "measure": "rate"})
    assert r.status_code == 422 and "residents" in r.text
    r = city.client.post(URL, headers=h, json={"layer": "district", "measure": "rate",
                                               "population": [{"area": "no-such", "population": 10}]})
    assert r.status_code == 422 and "no population row" in r.text
    assert city.client.post(URL, headers=h, json={"layer": "nowhere"}).status_code == 422
    assert city.client.post(URL, json={"layer": "grid"}).status_code == 401


# -- stored area layers (``crimelens areas load``) ------------------------------------------------
def grid_layer(name: str = "tracts") -> object:
    """A 4 x 3 grid of tracts over the test city with a wide spread of residents (POP) and a
    second declared population column (ADULTS)."""
    import geopandas as gpd
    import shapely

    from crimelens.drivers.areas import AreaLayer

    west, south, east, north = -87.80, 41.68, -87.54, 42.00
    dx, dy = (east - west) / 4, (north - south) / 3
    boxes, ids = [], []
    for j in range(3):
        for i in range(4):
            boxes.append(shapely.box(west + i * dx, south + j * dy, west + (i + 1) * dx, south + (j + 1) * dy))
            ids.append(f"T{j}{i}")
    pop = [300.0 + 9000.0 * ((k * 7) % 12) for k in range(12)]
    frame = gpd.GeoDataFrame({"area_id": ids, "POP": pop, "ADULTS": [p * 0.8 for p in pop]},
                             geometry=boxes, crs="EPSG:4326")
    return AreaLayer(name=name, frame=frame, population=("POP", "ADULTS"), crs="EPSG:4326")


def save_grid(url: str) -> None:
    from crimelens.store import connect
    from crimelens.store.areas import save_layer

    store = connect(url)
    try:
        save_layer(store, grid_layer())  # type: ignore[arg-type]
    finally:
        store.close()


@pytest.fixture
def layered(store_template: object, tmp_path: Path) -> Iterator[tuple[Env, dict[str, int]]]:
    """An app on DuckDB and on PostgreSQL whose store holds the area layer ``tracts``, and the
    incidents per tract counted independently."""
    import shutil

    from tests.service.conftest import PgTemplate

    if isinstance(store_template, PgTemplate):
        for env in make_env(store_template, tmp_path):
            save_grid(env.url)
            yield env, expected_counts(env.url)
        return
    assert isinstance(store_template, Path)
    seeded = tmp_path / "seeded.duckdb"
    shutil.copy(store_template, seeded)
    save_grid(str(seeded))
    want = expected_counts(str(seeded))
    for env in make_env(seeded, tmp_path):
        yield env, want


def expected_counts(url: str) -> dict[str, int]:
    """Incidents per tract counted here with shapely, independently of the route."""
    import shapely

    from crimelens.filters import IncidentFilter
    from crimelens.store import connect

    layer = grid_layer()
    store = connect(url)
    try:
        pts = store.incidents(IncidentFilter(), columns=["lat", "lon"]).dropna(subset=["lat", "lon"])
    finally:
        store.close()
    frame = layer.frame  # type: ignore[attr-defined]
    out = {}
    for aid, geom in zip(frame["area_id"], frame.geometry, strict=True):
        out[aid] = int(shapely.contains_xy(geom, pts["lon"].to_numpy(), pts["lat"].to_numpy()).sum())
    return out


def test_stored_layers_listed_and_mapped(layered: tuple[Env, dict[str, int]]) -> None:
    layered, want = layered  # type: ignore[assignment]
    assert isinstance(layered, Env)
    h = layered.auth("viewer")
    listed = layered.client.get(URL + "/layers", headers=h).json()
    assert [(x["name"], x["areas"], x["population"]) for x in listed] == [("tracts", 12, ["POP", "ADULTS"])]
    doc = layered.client.post(URL + "/layers/tracts", headers=h, json={"scheme": "quantiles", "k": 4}).json()
    check_legend(doc, 4)
    got = {f["properties"]["area"]: f["properties"]["count"] for f in doc["features"]}
    assert got == want and sum(want.values()) > 1000
    assert all(f["geometry"]["type"] == "Polygon" for f in doc["features"])
    pop = {a: p for a, p in zip(*(lambda f: (f["area_id"], f["POP"]))(grid_layer().frame), strict=True)}  # type: ignore[attr-defined]
    rate = layered.client.post(URL + "/layers/tracts", headers=h,
                               json={"measure": "rate", "scheme": "natural_breaks", "k": 5}).json()
    check_legend(rate, 5)
    assert rate["parameters"]["population"] == "POP"
    for f in rate["features"]:
        a = f["properties"]["area"]
        assert f["properties"]["value"] == pytest.approx(want[a] / pop[a] * 1000, rel=1e-3, abs=1e-4)
    city = sum(want.values()) / sum(pop.values()) * 1000
    for measure in ("smoothed_rate", "spatial_smoothed_rate"):
        eb = layered.client.post(URL + "/layers/tracts", headers=h, json={"measure": measure}).json()
        check_legend(eb, 5)
        raw = {f["properties"]["area"]: f["properties"]["rate"] for f in eb["features"]}
        val = {f["properties"]["area"]: f["properties"]["value"] for f in eb["features"]}
        assert val != raw
        if measure == "smoothed_rate":  # global EB pulls every rate toward the city's
            for a in val:
                assert abs(val[a] - city) <= abs(raw[a] - city) + 1e-6
    adults = layered.client.post(URL + "/layers/tracts", headers=h, json={"measure": "rate", "population": "ADULTS"})
    a0 = adults.json()["features"][0]["properties"]
    assert a0["value"] == pytest.approx(want[a0["area"]] / (pop[a0["area"]] * 0.8) * 1000, rel=1e-3, abs=1e-4)


def test_stored_layer_bad_requests(layered: tuple[Env, dict[str, int]]) -> None:
    env = layered[0]
    h = env.auth("viewer")
    r = env.client.post(URL + "/layers/nowhere", headers=h, json={})
    assert r.status_code == 404 and "tracts" in r.json()["detail"]
    r = env.client.post(URL + "/layers/tracts", headers=h, json={"measure": "rate", "population": "AREA"})
    assert r.status_code == 422 and "declared" in r.text and "POP, ADULTS" in r.text
    assert env.client.post(URL + "/layers/tracts", headers=h, json={"measure": "median"}).status_code == 422
    assert env.client.get(URL + "/layers").status_code == 401
