"""Socrata, ArcGIS and police.uk connectors against local emulations of their APIs, into DuckDB."""

from __future__ import annotations

import json
import re
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from crimelens.connectors.arcgis import ArcGISQuery, fetch_arcgis
from crimelens.connectors.fetch import FetchError
from crimelens.connectors.policeuk import PoliceUKQuery, fetch_policeuk
from crimelens.connectors.socrata import SocrataQuery, fetch_socrata
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter
from crimelens.sources.mapping import load_preset, parse_mapping
from crimelens.store.base import Store
from tests.conftest import TEST_KEY
from tests.connectors.conftest import Request, Server

JSON = {"Content-Type": "application/json"}


def balanced(d: dict[str, Any]) -> bool:
    return bool(d["read"] == d["stored"] + d["updated"] + d["duplicates"] + d["quarantined"])


# -- Socrata --------------------------------------------------------------------------------------


def socrata_row(i: int) -> dict[str, Any]:
    """A Chicago crimes row as the SODA JSON API returns it (null fields omitted)."""
    row: dict[str, Any] = {
        ":id": f"row-{i:04d}", "id": str(13_000_000 + i), "case_number": f"JH{100_000 + i}",
        "date": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:15:00.000", "block": "001XX N STATE ST",
        "iucr": "0486", "primary_type": "BATTERY", "description": "DOMESTIC BATTERY SIMPLE",
        "location_description": "APARTMENT", "arrest": i % 3 == 0, "domestic": True, "beat": "0111",
        "district": "001", "community_area": "32", "fbi_code": "08B", "x_coordinate": "1176352",
        "y_coordinate": "1900860", "year": "2024", "latitude": "41.8835", "longitude": "-87.6278",
        "location": {"type": "Point", "coordinates": [-87.6278, 41.8835]},
    }
    if i % 4:
        row["ward"] = "42"  # some rows lack the field entirely, as Socrata omits nulls
    return row


ROWS = [socrata_row(i) for i in range(25)]


def socrata_route(rows: list[dict[str, Any]]) -> Any:
    def handle(req: Request, h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        q = req.query
        assert q["$order"] == ":id"
        data = sorted(rows, key=lambda r: r[":id"])
        for cond in q.get("$where", "").replace("(", "").replace(")", "").split(" AND "):
            if cond:  # the SoQL this test needs: field = 'v' and field >= 'v', joined by AND
                m = re.fullmatch(r"(\w+)\s*(>=|=)\s*'([^']*)'", cond.strip())
                assert m, cond
                f, op, v = m.groups()
                data = [r for r in data if (r.get(f, "") >= v if op == ">=" else r.get(f) == v)]
        off, lim = int(q.get("$offset", 0)), int(q.get("$limit", 1000))
        return 200, JSON, json.dumps([{k: v for k, v in r.items() if k != ":id"}
                                      for r in data[off:off + lim]]).encode()
    return handle


def test_socrata_pages_ingest_and_refetch_is_a_noop(server: Server, store: Store, tmp_path: Path) -> None:
    server.routes["/resource/ijzp-q8t2.json"] = socrata_route(ROWS)
    query = SocrataQuery(url=server.url("/resource/ijzp-q8t2.json"), page_size=10, app_token="SECRET-TOKEN")
    res = fetch_socrata(server.fetcher(), store, query, key=TEST_KEY, mapping=load_preset("chicago_socrata"),
                        workdir=tmp_path)
    d = res.to_dict()
    assert res.pages == 3 and res.records == 25 and d["read"] == 25 and d["stored"] == 25 and balanced(d)
    assert d["quarantined"] == 0 and not d["skipped"]
    offsets = [r.query["$offset"] for r in server.seen]
    assert offsets == ["0", "10", "20"] and all(r.query["$limit"] == "10" for r in server.seen)
    assert all(r.headers["x-app-token"] == "SECRET-TOKEN" for r in server.seen)
    assert all("SECRET" not in json.dumps(r.query) for r in server.seen)
    assert "SECRET" not in json.dumps(d) and "/resource/ijzp-q8t2.json" in d["url"]
    assert any("fetched from https://localhost" in n for n in d["notes"])
    assert not list(tmp_path.glob(".crimelens-fetch-*"))  # the staging folder is gone
    info = store.info()
    assert info["incidents"] == 25 and info["by_source"] == {"chicago_socrata": 25}
    logged = store.execute("SELECT file FROM files")["file"].tolist()  # the load log names the URL
    assert len(logged) == 1 and logged[0].startswith("https://localhost") and "SECRET" not in logged[0]

    again = fetch_socrata(server.fetcher(), store, query, key=TEST_KEY, mapping=load_preset("chicago_socrata"),
                          workdir=tmp_path)
    assert again.report.skipped and again.report.stored == 0 and again.pages == 3

    # incremental: rows on or after 2024-01-20 only; all are already stored
    since = SocrataQuery(url=query.url, page_size=10, since=datetime(2024, 1, 20), date_field="date")
    inc = fetch_socrata(server.fetcher(), store, since, key=TEST_KEY, mapping=load_preset("chicago_socrata"),
                        workdir=tmp_path)
    expected = sum(r["date"] >= "2024-01-20T00:00:00" for r in ROWS)
    assert inc.records == expected and inc.report.duplicates == expected and inc.report.stored == 0
    assert server.seen[-1].query["$where"] == "date >= '2024-01-20T00:00:00'"


def test_socrata_limit_keep_and_query_validation(server: Server, store: Store, tmp_path: Path) -> None:
    server.routes["/resource/ijzp-q8t2.json"] = socrata_route(ROWS)
    keep = tmp_path / "staged" / "chicago.csv"
    query = SocrataQuery(url=server.url("/resource/ijzp-q8t2.csv?$where=beat='0111'"), page_size=5, limit=12)
    res = fetch_socrata(server.fetcher(), store, query, key=TEST_KEY, mapping=load_preset("chicago_socrata"),
                        keep=keep)
    assert res.records == 12 and res.pages == 3 and [r.query["$limit"] for r in server.seen] == ["5", "5", "2"]
    header = keep.read_text().splitlines()[0].split(",")
    assert {"ward", "date", "primary_type", "location"} <= set(header)
    for bad in ({"date_field": "date; drop"}, {"order": "x desc; 1"}, {"page_size": 60_000}, {"limit": 0}):
        with pytest.raises(InputError):
            SocrataQuery(url=query.url, **bad)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="Socrata API URL"):
        SocrataQuery(url="https://data.example.org/d/abcd").endpoint()


# -- ArcGIS ---------------------------------------------------------------------------------------

LAYER = "/arcgis/rest/services/Crime/FeatureServer/0"
ARC_MAPPING = """
name = "arc_test"
timezone = "America/Denver"
[fields]
incident_id = "INCIDENT_ID"
occurred_at = "FIRST_OCCURRENCE_DATE"
offense = "OFFENSE_TYPE_ID"
lat = "geometry_y"
lon = "geometry_x"
[categories]
"burglary-residence" = "burglary"
default = "other_crime"
"""


def features(n: int) -> list[dict[str, Any]]:
    return [{"attributes": {"OBJECTID": i + 1, "INCIDENT_ID": f"2024-{i:05d}", "OFFENSE_TYPE_ID":
                            "burglary-residence" if i % 2 else "theft-items-from-vehicle",
                            "FIRST_OCCURRENCE_DATE": 1_704_100_000_000 + i * 3_600_000},
             "geometry": {"x": -104.99 + i / 1000, "y": 39.74}} for i in range(n)]


def arcgis_routes(server: Server, feats: list[dict[str, Any]]) -> None:
    fields = [{"name": "OBJECTID", "type": "esriFieldTypeOID"}, {"name": "INCIDENT_ID", "type": "esriFieldTypeString"},
              {"name": "OFFENSE_TYPE_ID", "type": "esriFieldTypeString"},
              {"name": "FIRST_OCCURRENCE_DATE", "type": "esriFieldTypeDate"}]
    server.routes[LAYER] = lambda req, h: (200, JSON, json.dumps(
        {"objectIdField": "OBJECTID", "maxRecordCount": 4, "fields": fields}).encode())

    def query(req: Request, h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        q = req.query
        assert q["f"] == "json" and q["outFields"] == "*" and q["orderByFields"] == "OBJECTID ASC"
        if q["where"] != "1=1":
            return 200, JSON, json.dumps({"error": {"code": 400, "message": "Unable to complete operation."}}).encode()
        off, cnt = int(q["resultOffset"]), min(int(q["resultRecordCount"]), 4)
        page = feats[off:off + cnt]
        return 200, JSON, json.dumps({"features": page, "exceededTransferLimit": off + cnt < len(feats)}).encode()

    server.routes[LAYER + "/query"] = query


def test_arcgis_paging_honours_exceeded_transfer_limit(server: Server, store: Store, tmp_path: Path) -> None:
    arcgis_routes(server, features(10))
    keep = tmp_path / "arc.csv"
    res = fetch_arcgis(server.fetcher(), store, ArcGISQuery(url=server.url(LAYER + "/query")), key=TEST_KEY,
                       mapping=parse_mapping(ARC_MAPPING), keep=keep)
    d = res.to_dict()
    assert res.pages == 3 and res.records == 10 and d["stored"] == 10 and balanced(d)
    assert [r.query.get("resultOffset") for r in server.seen[1:]] == ["0", "4", "8"]
    text = keep.read_text()
    assert "geometry_x" in text and "2024-01-01T09:06:40Z" in text  # epoch ms → ISO UTC
    inc = store.incidents()
    assert sorted(inc["category"].unique()) == ["burglary", "other_crime"]
    assert inc["lon"].min() == pytest.approx(-104.99)
    again = fetch_arcgis(server.fetcher(), store, ArcGISQuery(url=server.url(LAYER)), key=TEST_KEY,
                         mapping=parse_mapping(ARC_MAPPING), workdir=tmp_path)
    assert again.report.skipped
    with pytest.raises(FetchError, match="ArcGIS error 400"):
        fetch_arcgis(server.fetcher(), store, ArcGISQuery(url=server.url(LAYER), where="bad"), key=TEST_KEY,
                     mapping=parse_mapping(ARC_MAPPING), workdir=tmp_path)
    with pytest.raises(InputError, match="FeatureServer"):
        ArcGISQuery(url=server.url("/arcgis/rest/services")).layer_url()


# -- police.uk ------------------------------------------------------------------------------------


def crime(i: int, slug: str, pid: str = "") -> dict[str, Any]:
    return {"category": slug, "location_type": "Force", "context": "", "persistent_id": pid, "id": 100 + i,
            "location_subtype": "", "month": "2024-01",
            "location": {"latitude": "53.79", "longitude": f"-1.5{i}",
                         "street": {"id": i, "name": "On or near Park Row"}},
            "outcome_status": {"category": "Under investigation", "date": "2024-01"} if pid else None}


HOODS = {
    "NH1": [crime(1, "burglary", "a" * 64), crime(2, "anti-social-behaviour"), crime(3, "violent-crime", "c" * 64)],
    "NH2": [crime(3, "violent-crime", "c" * 64), crime(4, "criminal-damage-arson", "d" * 64)],  # 3 on the edge
}


def policeuk_routes(server: Server) -> None:
    server.routes["/api/forces/test-force"] = lambda req, h: (200, JSON, b'{"id": "test-force", "name": "Test Police"}')
    server.routes["/api/test-force/neighbourhoods"] = lambda req, h: (
        200, JSON, json.dumps([{"id": k, "name": k} for k in HOODS]).encode())
    for n, k in enumerate(HOODS):  # each neighbourhood's boundary starts at a latitude of its own
        boundary = json.dumps([{"latitude": f"5{n}.{i}", "longitude": f"-1.{i}"} for i in range(1, 5)]).encode()
        server.routes[f"/api/test-force/{k}/boundary"] = lambda req, h, b=boundary: (200, JSON, b)

    def street(req: Request, h: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        assert req.method == "POST"
        form = dict(parse_qsl(req.body.decode()))
        points = form["poly"].split(":")
        assert form["date"] == "2024-01" and len(points) == 4
        hood = list(HOODS)[int(points[0][1])]
        return 200, JSON, json.dumps(HOODS[hood]).encode()

    server.routes["/api/crimes-street/all-crime"] = street
    server.routes["/api/crimes-no-location"] = lambda req, h: (
        200, JSON, json.dumps([{**crime(9, "drugs", "e" * 64), "location": None}]).encode())


def test_policeuk_force_month_mapped_by_the_preset(server: Server, store: Store, tmp_path: Path) -> None:
    policeuk_routes(server)
    q = PoliceUKQuery(month="2024-01", force="test-force", base_url=server.url("/api"), interval_s=0)
    keep = tmp_path / "wy.csv"
    res = fetch_policeuk(server.fetcher(), store, q, key=TEST_KEY, mapping=load_preset("police_uk"), keep=keep)
    d = res.to_dict()
    assert res.pages == 2 and res.records == 4 and d["stored"] == 4 and balanced(d)  # the edge crime once
    assert d["unmapped"] == {} and d["quarantined"] == 0
    header = keep.read_text().splitlines()[0]
    assert header == ("Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,"
                      "Crime type,Last outcome category,Context")
    inc = store.incidents(IncidentFilter(include_non_crime=True))
    assert sorted(inc["category"]) == ["anti_social_behaviour", "burglary", "criminal_damage_and_arson",
                                       "violence_and_sexual"]
    assert set(inc["time_precision"]) == {"month"} and set(inc["location_precision"]) == {"snapped"}
    assert "Test Police" in keep.read_text()

    nl = PoliceUKQuery(month="2024-01", force="test-force", no_location=True, base_url=server.url("/api"))
    res2 = fetch_policeuk(server.fetcher(), store, nl, key=TEST_KEY, mapping=load_preset("police_uk"),
                          workdir=tmp_path)
    assert res2.records == 1 and res2.report.read == 1 and balanced(res2.to_dict())
    assert server.seen[-1].query == {"category": "all-crime", "force": "test-force", "date": "2024-01"}


@pytest.mark.parametrize("kw, msg", [
    ({"month": "2024-13", "force": "x"}, "YYYY-MM"),
    ({"month": "2024-01"}, "--force or --poly"),
    ({"month": "2024-01", "force": "../etc"}, "force id"),
    ({"month": "2024-01", "poly": "1,2:3,4"}, "three"),
    ({"month": "2024-01", "poly": "1,2:3,4:5,6", "no_location": True}, "needs --force"),
])
def test_policeuk_query_validation(kw: dict[str, Any], msg: str) -> None:
    with pytest.raises(InputError, match=msg):
        PoliceUKQuery(**kw)


def test_arcgis_refuses_a_layer_that_cannot_page(server: Server, store: Store, tmp_path: Path) -> None:
    feats = features(6)
    info = {"objectIdField": "OBJECTID", "maxRecordCount": 2, "fields": []}
    server.routes[LAYER] = lambda req, h: (200, JSON, json.dumps(info).encode())
    server.routes[LAYER + "/query"] = lambda req, h: (  # ignores resultOffset: always the first page
        200, JSON, json.dumps({"features": feats[:2], "exceededTransferLimit": True}).encode())
    query = ArcGISQuery(url=server.url(LAYER))
    with pytest.raises(FetchError, match="same page twice"):
        fetch_arcgis(server.fetcher(), store, query, key=TEST_KEY, mapping=parse_mapping(ARC_MAPPING),
                     workdir=tmp_path)
    assert store.info()["incidents"] == 0 and not list(tmp_path.glob(".crimelens-fetch-*"))
    info["advancedQueryCapabilities"] = {"supportsPagination": False}
    with pytest.raises(FetchError, match="does not support paging"):
        fetch_arcgis(server.fetcher(), store, query, key=TEST_KEY, mapping=parse_mapping(ARC_MAPPING),
                     workdir=tmp_path)
