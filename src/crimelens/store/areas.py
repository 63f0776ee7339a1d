"""Area layers in the store (DuckDB or PostgreSQL), keyed by layer name.

Two tables, created on first use:

- ``area_layers``: one row per layer (``name`` primary key, CRS, declared population columns,
  attribute columns with their dtypes, loading notes as JSON, load time);
- ``area_features``: one row per area (``layer``, ``area_id``, file order ``seq``, attributes as JSON, geometry as WKB).

Saving a layer under an existing name replaces it in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from crimelens.drivers.areas import AREA_ID, AreaLayer
from crimelens.exceptions import InputError, StoreError
from crimelens.store.base import Store


class _Sql:
    """The few statements this module runs, in the backend's parameter style."""

    def __init__(self, store: Store) -> None:
        if hasattr(store, "con"):
            self.con: Any = store.con
            self.mark, self.blob, self.pg = "?", "BLOB", False
        elif hasattr(store, "conn"):
            self.con = store.conn
            self.mark, self.blob, self.pg = "%s", "BYTEA", True
        else:
            raise StoreError(f"store {store.url} cannot hold area layers")
        self.read_only = bool(getattr(store, "read_only", False))

    def q(self, sql: str) -> str:
        return sql.replace("?", self.mark)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.con.execute(self.q(sql), list(params))

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        if self.pg:
            with self.con.cursor() as cur:
                cur.executemany(self.q(sql), rows)
        else:
            self.con.executemany(self.q(sql), rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.pg:
            with self.con.transaction():
                yield
            return
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def ensure(self) -> None:
        if self.read_only:
            return
        self.execute("CREATE TABLE IF NOT EXISTS area_layers (name VARCHAR PRIMARY KEY, crs VARCHAR, "
                     "population VARCHAR, columns VARCHAR, notes VARCHAR, loaded_at TIMESTAMPTZ)")
        self.execute(f"CREATE TABLE IF NOT EXISTS area_features (layer VARCHAR, area_id VARCHAR, seq INTEGER, "
                     f"attributes VARCHAR, geometry {self.blob}, PRIMARY KEY (layer, area_id))")

    def has_tables(self) -> bool:
        row = self.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'area_layers'"
                           ).fetchone()
        return bool(row and row[0])


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    return v


def save_layer(store: Store, layer: AreaLayer) -> bool:
    """Store ``layer`` under ``layer.name`` (replacing one of that name); True when one was replaced."""
    if not layer.name or not layer.name.strip():
        raise InputError("an area layer needs a name")
    sql = _Sql(store)
    if sql.read_only:
        raise StoreError("store was opened read-only")
    sql.ensure()
    attrs = layer.attributes
    frame = layer.frame
    columns = {c: str(frame[c].dtype) for c in attrs}
    wkb = shapely.to_wkb(frame.geometry.to_numpy())
    records = frame[attrs].to_dict(orient="records")
    rows = [(layer.name, str(aid), i, json.dumps({k: _jsonable(v) for k, v in rec.items()}, default=str), bytes(g))
            for i, (aid, rec, g) in enumerate(zip(frame[AREA_ID], records, wkb, strict=True))]
    with sql.transaction():
        found = sql.execute("SELECT count(*) FROM area_layers WHERE name = ?", [layer.name]).fetchone()
        replaced = bool(found and found[0])
        sql.execute("DELETE FROM area_features WHERE layer = ?", [layer.name])
        sql.execute("DELETE FROM area_layers WHERE name = ?", [layer.name])
        sql.execute("INSERT INTO area_layers VALUES (?, ?, ?, ?, ?, ?)",
                    [layer.name, layer.crs, json.dumps(list(layer.population)), json.dumps(columns),
                     json.dumps(layer.notes), datetime.now(UTC)])
        sql.many("INSERT INTO area_features VALUES (?, ?, ?, ?, ?)", rows)
    return replaced


def list_layers(store: Store) -> list[dict[str, Any]]:
    """Stored layers: name, number of areas, CRS, population columns, load time."""
    sql = _Sql(store)
    if not sql.has_tables():
        return []
    rows = sql.execute(
        "SELECT l.name, l.crs, l.population, l.loaded_at, count(f.area_id) FROM area_layers l "
        "LEFT JOIN area_features f ON f.layer = l.name GROUP BY l.name, l.crs, l.population, l.loaded_at "
        "ORDER BY l.name").fetchall()
    return [{"name": r[0], "crs": r[1], "population": json.loads(r[2]), "loaded_at": str(r[3]), "areas": int(r[4])}
            for r in rows]


def load_layer(store: Store, name: str) -> AreaLayer:
    """The layer stored as ``name``; :class:`InputError` naming the stored layers when absent."""
    sql = _Sql(store)
    meta = sql.execute("SELECT crs, population, columns, notes FROM area_layers WHERE name = ?",
                       [name]).fetchone() if sql.has_tables() else None
    if meta is None:
        known = [layer["name"] for layer in list_layers(store)]
        raise InputError(f"no area layer {name!r} in the store "
                         f"({'stored: ' + ', '.join(known) if known else 'run `crimelens areas load FILE` first'})")
    crs, population, columns_json, notes = meta
    columns: dict[str, str] = json.loads(columns_json)
    rows = sql.execute("SELECT area_id, attributes, geometry FROM area_features WHERE layer = ? ORDER BY seq",
                       [name]).fetchall()
    attrs = pd.DataFrame([json.loads(r[1]) for r in rows], columns=list(columns))
    for col, dtype in columns.items():
        if dtype.startswith(("int", "Int", "float", "Float", "uint")):
            attrs[col] = pd.to_numeric(attrs[col], errors="coerce")
        elif dtype == "bool":
            attrs[col] = attrs[col].astype(bool)
    geoms = shapely.from_wkb([bytes(r[2]) for r in rows])
    frame = gpd.GeoDataFrame({AREA_ID: [str(r[0]) for r in rows]}, geometry=list(geoms), crs=crs)
    frame = gpd.GeoDataFrame(pd.concat([frame[[AREA_ID]], attrs, frame[["geometry"]]], axis=1),
                             geometry="geometry", crs=crs)
    return AreaLayer(name=name, frame=frame, population=tuple(json.loads(population)), crs=crs,
                     notes=list(json.loads(notes)))
