"""A per-shift patrol plan as GeoJSON: each shift's sites (points) and covered cells (polygons)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crimelens.patrol.calibration import Calibrated
from crimelens.patrol.evaluation import coverage_fairness, covered_cells, harm_prevented, plan_shifts
from crimelens.patrol.schedulers import Scheduler
from crimelens.patrol.simulator import SimConfig


def shift_plan_geojson(cal: Calibrated, sim: SimConfig, scheduler: Scheduler, day: pd.Timestamp) -> dict[str, Any]:
    """Plan every shift of ``day`` with ``scheduler`` (units and reach of ``sim``) as a FeatureCollection.

    Site features carry ``kind="site"``, ``shift``, ``hours``, ``unit`` and ``cell_id``; covered
    cells ``kind="covered"``, ``shift``, ``cell_id`` and ``expected`` (the shift's estimate). The
    ``plan`` member holds the method, units, shifts, the expected harm prevented per shift in the
    calibrated simulator and the fairness figure.
    """
    from crimelens.geo.crs import to_wgs84

    city = cal.city
    plans = plan_shifts(scheduler, cal.estimate)
    feats: list[dict[str, Any]] = []
    for s, sites in enumerate(plans):
        shift = city.shifts[s]
        hours = f"{shift.start_hour:02d}-{shift.end_hour:02d}"
        cells = city.cells[sites]
        x, y = city.grid.centres(cells)
        lon, lat = to_wgs84(x, y, city.grid.crs)
        for u, (cell, lo, la) in enumerate(zip(cells, lon, lat, strict=True), start=1):
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(lo), float(la)]},
                          "properties": {"kind": "site", "shift": shift.name, "hours": hours, "unit": u,
                                         "cell_id": int(cell)}})
        cov = np.flatnonzero(covered_cells(city, sim.radius_m, sites))
        rings = city.grid.polygons_wgs84(city.cells[cov])
        for pos, ring in zip(cov, rings, strict=True):
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                          "properties": {"kind": "covered", "shift": shift.name, "hours": hours,
                                         "cell_id": int(city.cells[pos]),
                                         "expected": round(float(cal.estimate[s, pos]), 5)}})
    fair = coverage_fairness(city, plans, cal.estimate)
    plan = {"method": scheduler.name, "day": day.date().isoformat(), "units": int(plans.shape[1]),
            "shifts": [{"name": sh.name, "start_hour": sh.start_hour, "end_hour": sh.end_hour} for sh in city.shifts],
            "radius_m": sim.radius_m, "cell_size_m": city.grid.cell_size,
            "harm_prevented_per_shift": [round(float(v), 4) for v in harm_prevented(city, sim, plans)],
            "fairness": {"max_ratio": round(fair["max_ratio"], 4), "max_group": fair["max_group"]}}
    return {"type": "FeatureCollection", "features": feats, "plan": plan}
