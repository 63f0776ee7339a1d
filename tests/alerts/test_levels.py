"""``alerts scan`` picks its level and says which; a level no incident has is an error."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.alerts.levels import choose_level, levels_present
from crimelens.cli.app import app
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter
from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import TEST_KEY, chicago_row, write_csv

PLACES = [("41.883500", "-87.627800"), ("41.950000", "-87.700000"), ("41.800000", "-87.600000")]


def _rows(with_district: bool) -> list[dict[str, str]]:
    """120 days of thefts at three places, and a burst at the first place in the last week."""
    start = pd.Timestamp("2024-01-01 12:00")
    rows = []
    for day in range(120):
        per_place = [1, 1, 1] if day < 113 else [9, 1, 1]
        for p, n in enumerate(per_place):
            for k in range(n):
                when = start + pd.Timedelta(days=day, minutes=7 * k)
                lat, lon = PLACES[p]
                rows.append(chicago_row(len(rows), Date=when.strftime("%m/%d/%Y %I:%M:%S %p"), Latitude=lat,
                                        Longitude=lon, District=f"00{p + 1}" if with_district else "", Ward="",
                                        **{"Primary Type": "THEFT", "Description": "OVER $500", "IUCR": "0810",
                                           "X Coordinate": "", "Y Coordinate": ""}))
    return rows


@pytest.fixture
def no_district(tmp_path: Path) -> str:
    db = str(tmp_path / "nd.duckdb")
    with connect(db) as store:
        assert ingest_file(store, write_csv(tmp_path / "nd.csv", _rows(False)), key=TEST_KEY,
                           now=pd.Timestamp("2025-01-01", tz="UTC")).stored > 360
    return db


def test_level_falls_back_to_h3_and_a_missing_level_is_an_error(no_district: str, tmp_path: Path) -> None:
    with connect(no_district, read_only=True) as store:
        flt = IncidentFilter()
        assert choose_level(store, flt)[0] == "h3_8"
        assert "district" not in levels_present(store, flt) and "h3_8" in levels_present(store, flt)
        assert choose_level(store, flt, "beat")[0] == "beat"
        with pytest.raises(InputError, match=r"no incident has a ward; levels available: .*h3_8"):
            choose_level(store, flt, "ward")
    with_d = str(tmp_path / "d.duckdb")
    with connect(with_d) as store:
        ingest_file(store, write_csv(tmp_path / "d.csv", _rows(True)[:50]), key=TEST_KEY,
                    now=pd.Timestamp("2025-01-01", tz="UTC"))
        assert choose_level(store, IncidentFilter()) == ("district", "incidents have districts (50 incidents)")


def test_scan_without_districts_reports_the_spike(no_district: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["alerts", "scan", "--db", no_district, "--no-save", "--category", "theft"])
    assert res.exit_code == 0, res.output
    assert "level: h3_8" in res.output and "no alerts" not in res.output
    assert "h3_8" in res.output.splitlines()[-1]
    for level in ("ward", "district"):  # district was the silent default that found nothing
        bad = runner.invoke(app, ["alerts", "scan", "--db", no_district, "--no-save", "--level", level])
        assert bad.exit_code == 2 and f"no incident has a {level}; levels available" in bad.output
