"""Every preset with data in ../shared/datasets, on the real files: accounting and sanity."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from crimelens.filters import IncidentFilter
from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import TEST_KEY, shared_file

pytestmark = pytest.mark.real_data


def _load(tmp_path: Path, *parts: str):  # type: ignore[no-untyped-def]
    path = shared_file(*parts)
    store = connect(str(tmp_path / "real.duckdb"))
    report = ingest_file(store, path, key=TEST_KEY)
    assert report.balanced(), report
    return store, report, path


def test_chicago_state_plane_agrees_with_published_latlon(tmp_path: Path) -> None:
    store, r, path = _load(tmp_path, "chicago_2015_02", "chicagoCrimes10k.csv")
    assert r.preset == "chicago" and r.read == 9999 and r.stored == 9999
    raw = pd.read_csv(path, dtype=str).dropna(subset=["X Coordinate", "Latitude"])
    t = Transformer.from_crs("EPSG:3435", "EPSG:4326", always_xy=True)
    lon, lat = t.transform(raw["X Coordinate"].astype(float).to_numpy(), raw["Y Coordinate"].astype(float).to_numpy())
    dy = (lat - raw["Latitude"].astype(float).to_numpy()) * 111_320
    dx = (lon - raw["Longitude"].astype(float).to_numpy()) * 111_320 * np.cos(np.radians(41.8))
    assert np.median(np.hypot(dx, dy)) < 5.0
    inc = store.incidents()
    assert (inc["location_precision"] == "none").sum() == 162  # rows published without coordinates
    assert inc["category"].value_counts().index[0] in {"theft", "simple_assault"}
    assert (inc["category"] == "unknown").sum() == 0


def test_toronto_local_hours_equal_occurrencehour(tmp_path: Path) -> None:
    store, r, path = _load(tmp_path, "toronto_mci", "toronto_mci_2014_2021.csv")
    assert r.preset == "toronto_mci" and r.stored == r.read == 210_992
    inc = store.incidents(columns=["occurred_at", "time_precision", "category", "extra"])
    raw = pd.read_csv(path, usecols=["occurrencehour", "occurrencedate"], dtype=str)
    # incidents come back ordered by time; compare the hour distribution and a per-row sample
    local = inc["occurred_at"].dt.tz_convert("America/Toronto")
    ours = local.dt.hour.value_counts().sort_index().to_numpy()
    theirs = raw["occurrencehour"].astype(int).value_counts().sort_index().to_numpy()
    # only wall-clock hours that do not exist (02:xx on spring-forward days) may move, by one hour
    assert np.abs(ours - theirs).sum() <= 2 * 60
    sample = inc.sample(200, random_state=1)
    for when, extra in zip(sample["occurred_at"], sample["extra"], strict=True):
        e = json.loads(extra)
        assert when.tz_convert("America/Toronto").day == int(e["occurrenceday"])
    assert set(inc["time_precision"]) == {"hour"}
    assert set(inc["category"]) == {"assault", "burglary", "vehicle_theft", "robbery", "theft"}


def test_police_uk_month_precision(tmp_path: Path) -> None:
    store, r, _ = _load(tmp_path, "police_uk_west_yorkshire", "2017-07-west-yorkshire-street.csv")
    assert r.preset == "police_uk" and r.read == 28_537 and r.stored == r.read
    inc = store.incidents(IncidentFilter(include_non_crime=True), columns=[
        "occurred_at", "occurred_until", "time_precision", "location_precision", "category_group", "lsoa"])
    assert len(inc) == r.stored
    assert set(inc["time_precision"]) == {"month"}
    starts = inc["occurred_at"].dt.tz_convert("Europe/London").dt.strftime("%Y-%m-%d %H:%M")
    assert (starts == "2017-07-01 00:00").all()
    assert (inc["occurred_until"].dt.tz_convert("Europe/London").dt.strftime("%Y-%m-%d") == "2017-08-01").all()
    located = inc["location_precision"] != "none"
    assert set(inc["location_precision"]) <= {"snapped", "none"} and inc["lsoa"].notna().sum() == located.sum()
    assert store.info()["by_category"].get("anti_social_behaviour", 0) > 5000


def test_sf_duplicates_and_sentinel(tmp_path: Path) -> None:
    _, r, _ = _load(tmp_path, "sf_2003_q1", "Q1_2003_03_2003_01.csv")
    assert r.preset == "sf_kaggle" and r.duplicates > 0
    assert r.flags.get("coords_sentinel", 0) >= 1
    assert r.stored + r.duplicates == r.read


def test_boston_local_time_and_missing_coordinates(tmp_path: Path) -> None:
    store, r, path = _load(tmp_path, "boston_2023", "boston_crime.csv")
    assert r.preset == "boston" and r.stored == r.read == 14_527
    inc = store.incidents(IncidentFilter(include_non_crime=True),
                          columns=["incident_id", "occurred_at", "location_precision", "firearm"])
    raw = pd.read_csv(path, dtype=str)
    raw["incident_id"] = raw["INCIDENT_NUMBER"] + " " + raw["OFFENSE_CODE"]
    m = inc.merge(raw[["incident_id", "HOUR"]], on="incident_id")
    assert len(m) == len(raw)
    assert (m["occurred_at"].dt.tz_convert("America/New_York").dt.hour == m["HOUR"].astype(int)).all()
    assert (inc["location_precision"] == "none").sum() >= 2482


def test_madison_bom_multiline_and_personal_data(tmp_path: Path) -> None:
    store, r, _ = _load(tmp_path, "madison_incident_reports", "Police_Incident_Reports.csv")
    assert r.preset == "madison" and r.stored == r.read == 2870
    inc = store.incidents(IncidentFilter(include_non_crime=True),
                          columns=["incident_id", "occurred_at", "suspect_ref", "has_narrative", "extra"])
    assert inc["occurred_at"].min().year == 1973
    assert inc["has_narrative"].mean() > 0.9 and inc["suspect_ref"].notna().sum() > 100
    personal = store.incidents(columns=["incident_id"], include_personal=True)
    assert personal["narrative"].str.contains("\n").any()
    assert not inc["extra"].fillna("").str.contains("Details").any()
