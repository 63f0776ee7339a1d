"""Fixtures shared by every test folder: a pseudonym key, temporary stores, small source files."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRIMELENS_SHARED", REPO.parent / "shared")) / "datasets"

CHICAGO_HEADER = [
    "ID", "Case Number", "Date", "Block", "IUCR", "Primary Type", "Description", "Location Description",
    "Arrest", "Domestic", "Beat", "District", "Ward", "Community Area", "FBI Code", "X Coordinate",
    "Y Coordinate", "Year", "Updated On", "Latitude", "Longitude", "Location",
]
TEST_KEY = b"test-pseudonym-key-0123456789abcdef"


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test runs with a known key and never touches the user's key file."""
    monkeypatch.setenv("CRIMELENS_PSEUDONYM_KEY", TEST_KEY.decode())
    monkeypatch.setenv("CRIMELENS_PSEUDONYM_KEY_FILE", str(tmp_path / "pseudonym.key"))


def chicago_row(i: int, **over: str) -> dict[str, str]:
    """One plausible Chicago portal row (block-level point near the Loop)."""
    row = {
        "ID": str(10_000_000 + i), "Case Number": f"JA{100000 + i}", "Date": "01/15/2024 11:30:00 PM",
        "Block": "001XX N STATE ST", "IUCR": "0486", "Primary Type": "BATTERY",
        "Description": "DOMESTIC BATTERY SIMPLE", "Location Description": "APARTMENT", "Arrest": "false",
        "Domestic": "true", "Beat": "0111", "District": "001", "Ward": "42", "Community Area": "32",
        "FBI Code": "08B", "X Coordinate": "1176352", "Y Coordinate": "1900860", "Year": "2024",
        "Updated On": "01/22/2024 03:40:00 PM", "Latitude": "41.883500", "Longitude": "-87.627800",
        "Location": "(41.8835, -87.6278)",
    }
    row.update(over)
    return row


def write_csv(path: Path, rows: list[dict[str, str]], header: list[str] | None = None, **kw: str) -> Path:
    """Write rows as a CSV file with the given (default Chicago) header."""
    with path.open("w", newline="", encoding=kw.get("encoding", "utf-8")) as fh:
        w = csv.DictWriter(fh, fieldnames=header or CHICAGO_HEADER, delimiter=kw.get("delimiter", ","))
        w.writeheader()
        w.writerows(rows)
    return path


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


@pytest.fixture
def store(store_path: Path) -> Iterator[object]:
    from crimelens.store import connect

    s = connect(str(store_path))
    yield s
    s.close()


def shared_file(*parts: str) -> Path:
    """A file under ../shared/datasets, or skip the test when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p}")
    return p
