"""Offline basemaps: an MBTiles file the test renders from the store, served at /tiles/{z}/{x}/{y}.png."""

from __future__ import annotations

import io
import shutil
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.service.conftest import service_settings


@pytest.fixture(scope="module")
def basemap(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crimelens.service.demo import build_basemap

    return build_basemap(template_store, tmp_path_factory.mktemp("tiles") / "city.mbtiles", zooms=(11, 12))


def test_tile_maths_round_trips() -> None:
    from crimelens.service.tiles import lonlat_to_tile, tile_to_lonlat

    for lon, lat, z in [(-87.65, 41.85, 12), (0.0, 0.0, 3), (151.2, -33.9, 15)]:
        x, y = lonlat_to_tile(lon, lat, z)
        back = tile_to_lonlat(x, y, z)
        assert back == pytest.approx((lon, lat), abs=1e-9)
    assert lonlat_to_tile(-180.0, 85.0511, 0)[0] == 0.0


def test_rendered_basemap_is_a_valid_mbtiles(basemap: Path) -> None:
    from PIL import Image

    con = sqlite3.connect(basemap)
    meta = dict(con.execute("SELECT name, value FROM metadata").fetchall())
    rows = con.execute("SELECT zoom_level, count(*) FROM tiles GROUP BY 1 ORDER BY 1").fetchall()
    blob = con.execute("SELECT tile_data FROM tiles WHERE zoom_level = 12 "
                       "ORDER BY length(tile_data) DESC LIMIT 1").fetchone()[0]
    con.close()
    assert meta["format"] == "png" and (meta["minzoom"], meta["maxzoom"]) == ("11", "12")
    assert [z for z, _ in rows] == [11, 12] and rows[1][1] >= rows[0][1]
    img = Image.open(io.BytesIO(blob)).convert("RGB")
    assert img.size == (256, 256)
    assert len(img.getcolors(65536) or []) > 1, "the tile should show streets or outlines, not a blank square"


def test_service_serves_tiles_from_the_file(basemap: Path, template_store: Path, tmp_path: Path) -> None:
    from crimelens.service.app import create_app
    from crimelens.service.tiles import MBTiles, lonlat_to_tile

    db = tmp_path / "s.duckdb"
    shutil.copy(template_store, db)
    settings = service_settings(db).model_copy(update={"basemap": str(basemap)})
    info = MBTiles(basemap).info()
    west, south, east, north = info["bounds"]
    x, y = (int(v) for v in lonlat_to_tile((west + east) / 2, (south + north) / 2, 12))
    with TestClient(create_app(settings)) as client:
        meta = client.get("/tiles/metadata.json").json()
        assert meta["url"] == "/tiles/{z}/{x}/{y}.png" and meta["bounds"] == info["bounds"]
        r = client.get(f"/tiles/12/{x}/{y}.png")
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content == MBTiles(basemap).tile(12, x, y)
        assert client.get(f"/tiles/12/{x}/{y + 50}.png").status_code == 404   # outside the city
        assert client.get("/tiles/3/9/0.png").status_code == 404              # x beyond 2^z
        page = client.get("/")
        assert 'data-tile-url="/tiles/{z}/{x}/{y}.png"' in page.text
        assert "img-src 'self'" in page.headers["content-security-policy"]


def test_external_tile_url_goes_into_the_csp(template_store: Path, tmp_path: Path) -> None:
    from crimelens.service.dashboard import csp

    s = service_settings(tmp_path / "x.duckdb", tile_url="https://tiles.example.org/{z}/{x}/{y}.png")
    policy = csp(s)
    assert "img-src 'self' data: blob: https://tiles.example.org;" in policy
    assert "tiles.example.org" not in csp(service_settings(tmp_path / "x.duckdb"))


def test_bad_basemap_files_are_one_clear_error(tmp_path: Path) -> None:
    from crimelens.exceptions import InputError
    from crimelens.service.tiles import MBTiles

    with pytest.raises(InputError, match="does not exist"):
        MBTiles(tmp_path / "missing.mbtiles")
    junk = tmp_path / "junk.mbtiles"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(InputError, match="not an MBTiles"):
        MBTiles(junk)
    empty = tmp_path / "empty.mbtiles"
    sqlite3.connect(empty).execute("CREATE TABLE metadata (name TEXT, value TEXT)").connection.close()
    with pytest.raises(InputError, match="no tiles table"):
        MBTiles(empty)


def test_serve_basemap_missing_file_exits_2(tmp_path: Path) -> None:
    from crimelens.cli.app import app

    r = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "x.duckdb"), "--basemap",
                                 str(tmp_path / "nope.mbtiles")])
    assert r.exit_code == 2
    assert "does not exist" in r.output
