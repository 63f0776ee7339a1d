"""The choropleth route: grid cells or areas, counts or rates per 1,000 (raw and empirical-Bayes
smoothed), classified by mapclassify on the server with the legend in class order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.conftest import Env, make_env

pytestmark = pytest.mark.service
URL = "/api/v1/choropleth"


@pytest.fixture(scope="module")
def city(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    yield from make_env(template_store, tmp_path_factory.mktemp("choro"))


def check_legend(doc: dict, k: int) -> None:
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
