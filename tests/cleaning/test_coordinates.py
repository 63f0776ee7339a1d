import numpy as np
import pandas as pd

from crimelens.cleaning.coordinates import clean_coordinates

CHI = (-87.95, 41.62, -87.50, 42.05)


def s(*v: object) -> pd.Series:
    return pd.Series([None if x is None else str(x) for x in v], dtype=object)


def test_flags_each_kind_of_bad_point() -> None:
    lat = s(41.88, 0, 90, -87.63, "nan", "inf", None, 47.6, 41.9)
    lon = s(-87.63, 0, -122.4, 41.88, -87.6, -87.6, None, -122.3, "abc")
    c = clean_coordinates(lat, lon, bbox=CHI)
    flags = [f if isinstance(f, str) else None for f in c.flag]
    assert flags == [None, "coords_zero", "coords_sentinel", "coords_swapped", "coords_invalid",
                               "coords_invalid", None, "coords_outside_extent", "coords_invalid"]
    assert np.isfinite(c.lat).tolist() == [True, False, False, True, False, False, False, False, False]
    assert c.lat[3] == 41.88 and c.lon[3] == -87.63


def test_state_plane_feet_are_projected() -> None:
    # Chicago portal row: X/Y in EPSG:3435 feet with its published lat/lon
    c = clean_coordinates(s(None), s(None), s(1198273), s(1851626), crs="EPSG:3435", bbox=CHI)
    assert abs(c.lat[0] - 41.747693646) < 1e-4 and abs(c.lon[0] + 87.549035389) < 1e-4


def test_far_points_flagged_without_bbox() -> None:
    lat = s(*([53.8] * 20 + [40.0]))
    lon = s(*([-1.5] * 20 + [-74.0]))
    c = clean_coordinates(lat, lon)
    assert c.flag.iloc[-1] == "coords_outside_extent" and c.flag.iloc[:-1].isna().all()
