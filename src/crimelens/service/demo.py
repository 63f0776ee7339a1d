"""``crimelens demo`` support: a demo administrator with a one-time random password, then serve.

The lead's ``crimelens demo`` command generates the synthetic city, ingests it, publishes hot
spots and a forecast (see :func:`crimelens.service.products.publish`), then calls
:func:`serve_demo`, which renders a small basemap of the demo city (block points and district
outlines, as MBTiles beside the store) so the dashboard shows a map offline.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from crimelens.settings import Settings

if TYPE_CHECKING:
    from crimelens.store.duckdb import DuckDBStore

DEMO_USER = "demo"


def create_demo_admin(settings: Settings, username: str = DEMO_USER) -> str:
    """Create (or reset) the demo admin in the store and return its random password."""
    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime

    password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
    rt = Runtime(settings)
    try:
        acc = Accounts(rt)
        if acc.get(username) is None:
            acc.create(username, Role.admin, password, can_export=True)
        else:
            acc.set_password(username, password)
            acc.update(username, role=Role.admin, disabled=False)
            acc.unlock(username)
    finally:
        rt.close()
    return password


def build_basemap(store_path: str | Path, out: str | Path | None = None, *,
                  zooms: tuple[int, ...] = (12, 13, 14)) -> Path:
    """Render the demo basemap from the store's incidents to ``out`` (default: beside the store)."""
    from crimelens.filters import IncidentFilter
    from crimelens.service.products import area_outlines
    from crimelens.service.tiles import render_basemap
    from crimelens.store import connect

    target = Path(out) if out is not None else Path(f"{store_path}.basemap.mbtiles")
    store = cast("DuckDBStore", connect(str(store_path), read_only=True))  # the demo store is a DuckDB file
    try:
        points = [(float(a), float(b)) for a, b in store.execute(
            "SELECT DISTINCT round(lon, 4) AS lon, round(lat, 4) AS lat FROM incidents "
            "WHERE lat IS NOT NULL AND lon IS NOT NULL LIMIT 30000", []).itertuples(index=False)]
        rings = [[(float(x), float(y)) for x, y in f["geometry"]["coordinates"][0]]
                 for f in area_outlines(store, IncidentFilter(), "district")["features"]]
    finally:
        store.close()
    render_basemap(target, points, rings, zooms=zooms, name="crimelens demo city")
    return target


def serve_demo(store_path: str | Path, *, port: int = 8000, host: str = "127.0.0.1",
               settings: Settings | None = None, out: TextIO | None = None) -> None:
    """Create the demo admin, print its password once, and serve the dashboard until interrupted."""
    from crimelens.service.serve import serve

    base = settings or Settings()
    s = base.model_copy(update={"db": str(store_path), "host": host, "port": port})
    if s.basemap is None:
        s = s.model_copy(update={"basemap": str(build_basemap(store_path))})
    password = create_demo_admin(s)
    stream = out or sys.stdout
    stream.write(f"\ncrimelens dashboard: http://{host}:{port}/\n  user: {DEMO_USER}\n  password: {password}\n"
                 "  (shown once; reset with `crimelens users reset demo --password-stdin`)\n\n")
    stream.flush()
    serve(s)
