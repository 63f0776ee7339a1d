"""Reference point layers (address points, say) from a file, for geomasking (docs/privacy.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.geo.crs import FloatArray


def read_reference(path: str | Path) -> FloatArray:
    """WGS84 reference points (e.g. address points) as an ``(n, 2)`` array of ``(lon, lat)``.

    Parameters
    ----------
    path : str or Path
        ``.csv`` or ``.parquet`` with ``lon``/``lat`` (or ``longitude``/``latitude``) columns, or
        ``.geojson`` with Point features. Rows without finite coordinates are skipped.

    Returns
    -------
    ndarray
    """
    src = Path(path)
    suffix = src.suffix.lower()
    if suffix == ".geojson":
        feats = json.loads(src.read_text(encoding="utf-8")).get("features", [])
        pts = [f["geometry"]["coordinates"][:2] for f in feats
               if (f.get("geometry") or {}).get("type") == "Point"]
        out = np.asarray(pts, dtype=float).reshape(-1, 2)
    elif suffix in (".csv", ".parquet"):
        frame = pd.read_csv(src) if suffix == ".csv" else pd.read_parquet(src)
        cols = {c.lower(): c for c in frame.columns}
        lon, lat = cols.get("lon", cols.get("longitude")), cols.get("lat", cols.get("latitude"))
        if lon is None or lat is None:
            raise InputError(f"{src.name}: reference points need lon/lat (or longitude/latitude) columns")
        out = np.column_stack([pd.to_numeric(frame[lon], errors="coerce"), pd.to_numeric(frame[lat], errors="coerce")])
    else:
        raise InputError(f"unsupported reference file {src.name!r}: use .csv, .parquet or .geojson")
    ok: FloatArray = out[np.isfinite(out).all(axis=1)]
    if len(ok) == 0:
        raise InputError(f"{src.name}: no reference points with coordinates")
    return ok
