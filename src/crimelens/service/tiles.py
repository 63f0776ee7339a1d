"""Basemap tiles served by the service itself, from an MBTiles file the agency provides.

An MBTiles file is a SQLite database with a ``tiles`` table (``zoom_level``, ``tile_column``,
``tile_row`` in TMS order, ``tile_data``) and a ``metadata`` table (``bounds``, ``minzoom``,
``maxzoom``, ``format``...). ``crimelens serve --basemap FILE`` mounts it at
``/tiles/{z}/{x}/{y}.png`` (XYZ order, as web maps ask) and ``/tiles/metadata.json``; the
dashboard then draws the tiles under the map, with no network beyond this server.

:func:`render_basemap` draws a small tile set (streets as the incidents' block points, area
outlines) for the demo city, so ``make demo`` shows a basemap offline.
"""

from __future__ import annotations

import io
import math
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse, Response

from crimelens.exceptions import InputError

TILE = 256
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
Ring = Sequence[tuple[float, float]]


def lonlat_to_tile(lon: float, lat: float, z: int) -> tuple[float, float]:
    """Fractional XYZ tile coordinates of a WGS84 point at zoom ``z`` (web Mercator)."""
    n = 2.0 ** z
    lat_r = math.radians(max(-85.0511, min(85.0511, lat)))
    return (lon + 180.0) / 360.0 * n, (1.0 - math.asinh(math.tan(lat_r)) / math.pi) / 2.0 * n


def tile_to_lonlat(x: float, y: float, z: int) -> tuple[float, float]:
    """WGS84 longitude and latitude of fractional XYZ tile coordinates (the inverse of the above)."""
    n = 2.0 ** z
    return x / n * 360.0 - 180.0, math.degrees(math.atan(math.sinh(math.pi * (1.0 - 2.0 * y / n))))


class MBTiles:
    """Read-only access to an MBTiles file (one SQLite connection per thread).

    Parameters
    ----------
    path
        The ``.mbtiles`` file. Raises :class:`InputError` when it is missing or holds no tiles table.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"basemap file {self.path} does not exist")
        self._local = threading.local()
        try:
            con = self._con()
            names = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}
            meta = dict(con.execute("SELECT name, value FROM metadata").fetchall()) if "metadata" in names else {}
        except sqlite3.DatabaseError as exc:
            raise InputError(f"basemap file {self.path} is not an MBTiles (SQLite) file: {exc}") from None
        if "tiles" not in names:
            raise InputError(f"basemap file {self.path} has no tiles table (not an MBTiles file)")
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in meta.items()}
        fmt = self.metadata.get("format", "png").lower()
        if fmt not in MEDIA:
            raise InputError(f"basemap tiles are {fmt!r}; raster png, jpg or webp tiles are supported")
        self.media_type = MEDIA[fmt]

    def _con(self) -> sqlite3.Connection:
        con: sqlite3.Connection | None = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            self._local.con = con
        return con

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ ``z/x/y`` (stored flipped, in TMS rows), or None when the file lacks it."""
        row = self._con().execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
            (z, x, (1 << z) - 1 - y)).fetchone()
        return bytes(row[0]) if row else None

    def info(self) -> dict[str, Any]:
        """What the dashboard needs: bounds (west, south, east, north), zoom range, attribution."""
        con = self._con()
        lo, hi = con.execute("SELECT min(zoom_level), max(zoom_level) FROM tiles").fetchone()
        bounds = [float(v) for v in self.metadata.get("bounds", "-180,-85.0511,180,85.0511").split(",")]
        return {"name": self.metadata.get("name", self.path.stem), "bounds": bounds,
                "minzoom": int(self.metadata.get("minzoom", lo if lo is not None else 0)),
                "maxzoom": int(self.metadata.get("maxzoom", hi if hi is not None else 0)),
                "attribution": self.metadata.get("attribution", ""), "url": "/tiles/{z}/{x}/{y}.png"}


def write_mbtiles(path: str | Path, tiles: Iterable[tuple[int, int, int, bytes]], metadata: dict[str, str]) -> int:
    """Write XYZ ``(z, x, y, png)`` tiles and metadata to a new MBTiles file; return the tile count."""
    path = Path(path)
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    try:
        con.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        con.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        con.execute("CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)")
        con.executemany("INSERT INTO metadata VALUES (?, ?)", sorted(metadata.items()))
        n = 0
        for z, x, y, data in tiles:
            con.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, (1 << z) - 1 - y, data))
            n += 1
        con.commit()
    finally:
        con.close()
    return n


def render_basemap(path: str | Path, points: Sequence[tuple[float, float]], outlines: Sequence[Ring], *,
                   zooms: Sequence[int] = (12, 13, 14), name: str = "demo city") -> int:
    """Render a light basemap (block points as streets, area outlines) to an MBTiles file.

    Parameters
    ----------
    path
        The MBTiles file to write (replaced).
    points
        ``(lon, lat)`` points drawn as small grey marks (incident block addresses trace the streets).
    outlines
        Rings of ``(lon, lat)`` drawn as darker lines (district or beat outlines).
    zooms
        Zoom levels to render; tiles are drawn only where the points' bounding box reaches.

    Returns
    -------
    int
        The number of tiles written.
    """
    from PIL import Image, ImageDraw

    if not points:
        raise InputError("a basemap needs at least one point to know where the city is")
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    west, east, south, north = min(lons), max(lons), min(lats), max(lats)

    def tiles() -> Iterable[tuple[int, int, int, bytes]]:
        for z in zooms:
            x0, y0 = (int(v) for v in lonlat_to_tile(west, north, z))
            x1, y1 = (int(v) for v in lonlat_to_tile(east, south, z))
            pix = [lonlat_to_tile(lon, lat, z) for lon, lat in points]
            rings = [[lonlat_to_tile(lon, lat, z) for lon, lat in r] for r in outlines]
            for tx in range(x0, x1 + 1):
                for ty in range(y0, y1 + 1):
                    img = Image.new("RGB", (TILE, TILE), (246, 244, 238))
                    d = ImageDraw.Draw(img)
                    for px, py in pix:
                        u, v = (px - tx) * TILE, (py - ty) * TILE
                        if -2 <= u <= TILE + 2 and -2 <= v <= TILE + 2:
                            d.rectangle((u - 1, v - 1, u + 1, v + 1), fill=(196, 198, 204))
                    for r in rings:
                        d.line([((px - tx) * TILE, (py - ty) * TILE) for px, py in r], fill=(120, 128, 140), width=2)
                    buf = io.BytesIO()
                    img.save(buf, "PNG", optimize=True)
                    yield z, tx, ty, buf.getvalue()

    meta = {"name": name, "format": "png", "type": "baselayer", "minzoom": str(min(zooms)),
            "maxzoom": str(max(zooms)), "bounds": f"{west},{south},{east},{north}",
            "attribution": "rendered by crimelens from the demo city"}
    return write_mbtiles(path, tiles(), meta)


def mount(app: FastAPI, basemap: str | Path | None) -> MBTiles | None:
    """Add ``/tiles/{z}/{x}/{y}.png`` and ``/tiles/metadata.json`` for ``basemap`` (nothing when None)."""
    if basemap is None:
        return None
    source = MBTiles(basemap)

    @app.get("/tiles/metadata.json", include_in_schema=False)
    def tile_info() -> JSONResponse:
        return JSONResponse(source.info())

    @app.get("/tiles/{z}/{x}/{y}.png", include_in_schema=False)
    def tile(z: int, x: int, y: int) -> Response:
        if not (0 <= z <= 24 and 0 <= x < (1 << z) and 0 <= y < (1 << z)):
            raise HTTPException(404, "no such tile")
        data = source.tile(z, x, y)
        if data is None:
            raise HTTPException(404, "tile not in the basemap")
        return Response(data, media_type=source.media_type, headers={"Cache-Control": "public, max-age=86400"})

    return source
