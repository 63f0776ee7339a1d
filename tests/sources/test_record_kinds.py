"""Stops and arrests are their own record kinds: stored with their subject fields, never counted as crimes."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pytest

from crimelens.exceptions import InputError, StoreError
from crimelens.filters import ALL_KINDS, IncidentFilter
from crimelens.ingest import ingest_file
from crimelens.schema import ADDED_COLUMNS, INCIDENT_SCHEMA
from crimelens.sources.detect import detect_preset
from crimelens.store import connect
from crimelens.store.sql import ddl_for, where_clause
from tests.conftest import TEST_KEY, chicago_row, write_csv
from tests.sources.kinds_files import ARRESTS_HEADER, STOPS_HEADER, arrest_row, stop_row, write


@pytest.fixture
def mixed(store, tmp_path: Path):  # type: ignore[no-untyped-def]
    write_csv(tmp_path / "crimes.csv", [chicago_row(i) for i in range(5)])
    write(tmp_path / "stops.csv", STOPS_HEADER,
          [stop_row(i, linked="True" if i % 2 else "False", outcome="Arrest" if i % 2 else
                    "A no further action disposal") for i in range(8)])
    write(tmp_path / "arrests.csv", ARRESTS_HEADER, [arrest_row(i) for i in range(6)])
    for name in ("crimes.csv", "stops.csv", "arrests.csv"):
        assert ingest_file(store, tmp_path / name, key=TEST_KEY).balanced()
    return store


def test_presets_are_detected_from_the_published_columns() -> None:
    assert detect_preset(STOPS_HEADER).name == "police_uk_stops"
    assert detect_preset(ARRESTS_HEADER).name == "nypd_arrests"


def test_crimes_only_unless_asked(mixed) -> None:  # type: ignore[no-untyped-def]
    assert len(mixed.incidents()) == 5
    assert int(mixed.counts([])["count"].sum()) == 5
    by_kind = mixed.counts(["record_kind"], IncidentFilter(kinds=ALL_KINDS))
    assert dict(zip(by_kind["record_kind"], by_kind["count"], strict=True)) == {"arrest": 6, "crime": 5, "stop": 8}
    assert len(mixed.incidents(IncidentFilter(kinds=("stop",)))) == 8
    # the in-memory filter agrees with the SQL one
    everything = mixed.incidents(IncidentFilter(kinds=ALL_KINDS))
    assert len(IncidentFilter().apply(everything)) == 5
    assert len(IncidentFilter(kinds=("arrest", "stop")).apply(everything)) == 14
    # include_non_crime is about categories, not record kinds
    assert len(mixed.incidents(IncidentFilter(include_non_crime=True))) == 5


def test_subject_fields_are_stored_as_recorded(mixed) -> None:  # type: ignore[no-untyped-def]
    cols = ["record_kind", "category", "subject_sex", "subject_age_band", "subject_ethnicity_self",
            "subject_ethnicity_officer", "search_hit", "outcome", "discovery", "extra"]
    stops = mixed.incidents(IncidentFilter(kinds=("stop",)), columns=cols)
    assert set(stops["category"]) == {"drugs"} and set(stops["discovery"]) == {"police_initiated"}
    assert set(stops["subject_ethnicity_officer"]) == {"White"}
    assert stops["subject_ethnicity_self"].str.startswith("White - ").all()  # kept apart from the officer's
    assert stops["search_hit"].sum() == 4 and set(stops["subject_age_band"]) <= {"18-24", "25-34", "over 34", "10-17"}
    assert stops["extra"].str.contains("Legislation").all()
    arrests = mixed.incidents(IncidentFilter(kinds=("arrest",)), columns=[*cols, "district"])
    assert set(arrests["subject_ethnicity_officer"]) == {"BLACK"} and arrests["subject_ethnicity_self"].isna().all()
    assert set(arrests["category"]) == {"drugs"} and set(arrests["district"]) == {"70", "71", "72", "73", "74"}


def test_where_clause_names_the_kinds() -> None:
    sql, params = where_clause(IncidentFilter(kinds=("stop", "arrest")))
    assert "record_kind IN (?, ?)" in sql and params == ["stop", "arrest"]
    assert "record_kind" not in where_clause(IncidentFilter(kinds=ALL_KINDS))[0]
    with pytest.raises(InputError, match="unknown record kind"):
        IncidentFilter(kinds=("crimes",))


def test_a_version_1_store_is_upgraded_and_its_rows_are_crimes(tmp_path: Path) -> None:
    path = tmp_path / "v1.duckdb"
    old = _schema_v1()
    con = duckdb.connect(str(path))
    con.execute(ddl_for("incidents", old, dialect="duckdb"))
    con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    con.execute("INSERT INTO incidents (source, incident_id, occurred_at, time_precision, category, category_group, "
                "category_precision, crimes_against, ucr_part1, location_precision, discovery, has_narrative, "
                "batch_id, ingested_at, row_hash) VALUES ('old', '1', '2024-01-01', 'day', 'theft', 'property', "
                "'leaf', 'property', 'property', 'none', 'unknown', false, 'b', now(), 1)")
    con.close()
    with pytest.raises(StoreError, match="schema version 1"):  # StoreError, one line
        connect(str(path), read_only=True)
    store = connect(str(path))
    got = store.incidents(columns=["incident_id", "record_kind"])
    assert got.to_dict("records") == [{"incident_id": "1", "record_kind": "crime"}]
    assert store.info()["schema_version"] == 2
    store.close()
    assert list(duckdb.connect(str(path), read_only=True).execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'incidents'").df()[
        "column_name"]) == INCIDENT_SCHEMA.names


def _schema_v1() -> pa.Schema:
    """The incident schema before the columns of store schema 2."""
    schema = INCIDENT_SCHEMA
    for n in ADDED_COLUMNS:
        schema = schema.remove(schema.get_field_index(n))
    return schema


def test_frames_without_record_kind_are_crimes() -> None:
    frame = pd.DataFrame({"category": ["theft", "theft"], "category_group": ["property"] * 2})
    assert len(IncidentFilter().apply(frame)) == 2
    assert len(IncidentFilter(kinds=("stop",)).apply(frame)) == 0
