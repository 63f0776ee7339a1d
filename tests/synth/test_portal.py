"""Portal files: the Chicago format exactly, the canonical CSV, and dirt counted exactly."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from crimelens.exceptions import InputError
from crimelens.schema import INCIDENT_COLUMNS
from crimelens.synth import CHICAGO_COLUMNS, DirtConfig, SyntheticCity, portal_frame, write_portal
from tests.conftest import shared_file

US_DATE = re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2} [AP]M")
DIRT = DirtConfig(missing_coords=0.03, zero_coords=0.01, nan_coords=0.01, bad_dates=0.02, duplicates=0.02,
                  changed_duplicates=0.01, unmapped_categories=0.01)


def _read_raw(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_chicago_header_is_the_portal_header(small_city: SyntheticCity, tmp_path: Path) -> None:
    frame = small_city.to_portal("chicago")
    assert tuple(frame.columns) == CHICAGO_COLUMNS
    write_portal(small_city, tmp_path / "c.csv")
    first_line = (tmp_path / "c.csv").read_text().split("\n", 1)[0]
    assert first_line == ",".join(CHICAGO_COLUMNS)


def test_chicago_header_equals_the_real_file(small_city: SyntheticCity, tmp_path: Path) -> None:
    real = shared_file("chicago_2015_02", "chicagoCrimes10k.csv")
    write_portal(small_city, tmp_path / "c.csv")
    real_header = real.read_text(encoding="utf-8").split("\n", 1)[0].rstrip("\r")
    assert (tmp_path / "c.csv").read_text().split("\n", 1)[0] == real_header
    ours, theirs = _read_raw(tmp_path / "c.csv"), pd.read_csv(real, dtype=str, keep_default_na=False, nrows=50)
    for col in ("Date", "Updated On"):
        assert ours[col].str.fullmatch(US_DATE).all() and theirs[col].str.fullmatch(US_DATE).all()
    for col, pattern in (("Beat", r"\d{4}"), ("District", r"\d{3}"), ("Arrest", "true|false"),
                         ("Location", r"\(-?\d+\.\d+, -?\d+\.\d+\)"), ("X Coordinate", r"\d{7}")):
        assert ours[col].str.fullmatch(pattern).all(), col


def test_chicago_coordinates_and_times_are_consistent(small_city: SyntheticCity) -> None:
    f = small_city.to_portal("chicago")
    inc = small_city.incidents
    back = Transformer.from_crs("EPSG:3435", "EPSG:4326", always_xy=True)
    lon, lat = back.transform(f["X Coordinate"].astype(float).to_numpy(), f["Y Coordinate"].astype(float).to_numpy())
    metres = np.hypot((lon - f["Longitude"]) * 111_320 * np.cos(np.radians(41.84)), (lat - f["Latitude"]) * 110_574)
    assert metres.max() < 2.0
    assert np.allclose(f["Latitude"], inc["lat"], atol=1e-8)
    local = pd.to_datetime(f["Date"], format="%m/%d/%Y %I:%M:%S %p")
    want = inc["occurred_at"].dt.tz_convert("America/Chicago").dt.tz_localize(None)
    assert (local == want).all()
    assert (f["Year"] == want.dt.year).all()
    assert (f["ID"].astype(str) == inc["incident_id"]).all()
    assert (f["Location"] == "(" + f["Latitude"].map(repr) + ", " + f["Longitude"].map(repr) + ")").all()
    assert f["Case Number"].is_unique and f["Case Number"].str.fullmatch(r"[A-Z]{2}\d{6}").all()


def test_csv_quotes_only_where_needed_and_gzip_works(small_city: SyntheticCity, tmp_path: Path) -> None:
    write_portal(small_city, tmp_path / "c.csv.gz")
    with gzip.open(tmp_path / "c.csv.gz", "rt") as fh:
        text = fh.read()
    line = text.split("\n")[1]
    assert line.endswith('"') and line.count('"') == 2  # only the Location field is quoted
    back = pd.read_csv(tmp_path / "c.csv.gz", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(back, small_city.to_portal("chicago").astype(str).replace("<NA>", ""),
                                  check_dtype=False)


def test_canonical_format_round_trips(small_city: SyntheticCity, tmp_path: Path) -> None:
    write_portal(small_city, tmp_path / "c.csv", fmt="canonical")
    back = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    assert tuple(back.columns) == INCIDENT_COLUMNS
    inc = small_city.incidents
    assert (pd.to_datetime(back["occurred_at"], utc=True) == inc["occurred_at"]).all()
    assert np.allclose(back["lat"].astype(float), inc["lat"])
    assert set(back["arrest"]) <= {"true", "false"}


def test_unknown_format_is_an_input_error(small_city: SyntheticCity) -> None:
    with pytest.raises(InputError):
        small_city.to_portal("nyc")


def _count_flaws(raw: pd.DataFrame, lat: str, date: str, ptype: str, id_col: str, chicago: bool) -> dict[str, int]:
    year = raw[date].str[6:10] if chicago else raw[date].str[:4]
    parseable = raw[date].str.fullmatch(US_DATE) if chicago else raw[date].str.fullmatch(r"\d{4}-\d\d-\d\dT.*Z")
    exact_dups = int(raw.duplicated().sum())
    distinct = raw.drop_duplicates()
    return {
        "missing_coords": int((raw[lat] == "").sum()),
        "zero_coords": int(raw[lat].isin(["0", "0.0"]).sum()),
        "nan_coords": int((raw[lat] == "NaN").sum()),
        "bad_date_1899": int((parseable & (year == "1899")).sum()),
        "bad_date_2100": int((parseable & (year == "2100")).sum()),
        "bad_date_text": int((~parseable).sum()),
        "unmapped_categories": int((raw[ptype] == "MADE UP OFFENSE").sum()),
        "duplicates": exact_dups,
        "changed_duplicates": int(distinct[id_col].duplicated().sum()),
    }


@pytest.mark.parametrize("fmt", ["chicago", "canonical"])
def test_dirt_is_counted_exactly(small_city: SyntheticCity, tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"dirty_{fmt}.csv"
    report = write_portal(small_city, path, fmt=fmt, dirt=DIRT)
    raw = _read_raw(path)
    n = len(small_city.incidents)
    chicago = fmt == "chicago"
    cols = ("Latitude", "Date", "Primary Type", "ID") if chicago else ("lat", "occurred_at", "offense", "incident_id")
    seen = _count_flaws(raw, *cols, chicago=chicago)
    assert seen == report.counts
    assert all(v > 0 for v in report.counts.values())
    assert report.rows_clean == n and len(raw) == report.rows_written
    assert report.rows_written == n + report.counts["duplicates"] + report.counts["changed_duplicates"]
    assert report.bad_dates == round(DIRT.bad_dates * n)
    assert small_city.truth.dirt == report.to_dict()
    ids = raw[cols[3]]
    unmapped = set(ids[raw[cols[2]] == "MADE UP OFFENSE"])
    assert unmapped == set(report.ids["unmapped_categories"])
    changed = raw.drop_duplicates()
    assert set(changed[cols[3]][changed[cols[3]].duplicated()]) == set(report.ids["changed_duplicates"])


def test_dirt_is_seeded_and_leaves_the_city_untouched(small_city: SyntheticCity) -> None:
    before = small_city.incidents.copy()
    a, ra = portal_frame(small_city, "chicago", DIRT)
    b, rb = portal_frame(small_city, "chicago", DIRT)
    pd.testing.assert_frame_equal(a, b)
    assert ra.ids == rb.ids
    pd.testing.assert_frame_equal(before, small_city.incidents)
    clean, report = portal_frame(small_city, "chicago")
    assert sum(report.counts.values()) == 0 and report.rows_written == len(clean)
