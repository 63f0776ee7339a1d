"""The dashboard: one HTML page (login, then map, charts, tables, live feed) and its static files.

Everything is served locally: plotly.js comes from the installed ``plotly`` wheel, the page's
scripts (``core``, ``share``, ``basemap``, ``drill``, ``raster``, ``map``, ``timeline``, ``app``)
and styles from ``static/``. The map draws cells, hot spots and areas on longitude/latitude axes
with the basemap's tiles laid under them as images, so it works with no network; layers of many
cells are filled on one canvas laid over the tiles as one more image (``raster.js``), not drawn
as SVG shapes. A basemap comes from an MBTiles file the
service serves itself (``crimelens serve --basemap FILE``: ``/tiles/{z}/{x}/{y}.png``, see
:mod:`crimelens.service.tiles`) or from an XYZ tile URL the admin configures (setting
``tile_url``, whose origin is added to the CSP). The page holds no data: it calls the API with
the token it gets at login.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from crimelens.settings import Settings
from crimelens.taxonomy import CATEGORIES, GROUPS, ROLLUPS

HERE = Path(__file__).parent


def plotly_js() -> Path:
    """plotly.min.js from the installed plotly package."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.exists():
        raise HTTPException(404, "plotly.min.js not found in the installed plotly package")
    return path


def csp(settings: Settings) -> str:
    """Content-Security-Policy: same-origin scripts only; the tile server's origin when one is set."""
    tiles = ""
    if settings.tile_url:
        u = urlsplit(settings.tile_url.replace("{", "").replace("}", ""))
        tiles = f" {u.scheme}://{u.netloc}" if u.scheme in ("http", "https") and u.netloc else ""
    return ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            f"img-src 'self' data: blob:{tiles}; connect-src 'self'{tiles}; worker-src blob:; font-src 'self' data:; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the page, the vendored plotly.js and the static files to ``app``."""
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    from crimelens.service import tiles

    basemap = tiles.mount(app, settings.basemap)
    info = basemap.info() if basemap else {}
    page = env.get_template("index.html").render(
        tile_url=info.get("url") or settings.tile_url or "",
        tile_bounds=",".join(str(v) for v in info.get("bounds", ())),
        tile_minzoom=info.get("minzoom", 0), tile_maxzoom=info.get("maxzoom", 19),
        tile_attribution=info.get("attribution", ""),
        groups=[g for g in GROUPS if g != "non_crime"],
        rollups=sorted(ROLLUPS),
        leaves=[c.name for c in CATEGORIES],
    )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_bundle() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript")

    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
