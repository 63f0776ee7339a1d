"""Files as people have them: repeated header names, exports with fewer columns, --strict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.exceptions import InputError, MappingError
from crimelens.ingest import ingest_file
from crimelens.sources.detect import detect
from crimelens.sources.fit import fit_mapping
from crimelens.sources.mapping import load_preset, parse_mapping
from crimelens.sources.readers import open_source, unique_names
from tests.conftest import CHICAGO_HEADER, TEST_KEY, chicago_row, write_csv

runner = CliRunner()
SOCRATA_FEW = ["date", "primary_type", "description", "iucr", "latitude", "longitude", "arrest"]


def test_unique_names_keeps_the_first_and_numbers_later_copies() -> None:
    assert unique_names(["A", "B", "A", "A"]) == (["A", "B", "A.2", "A.3"], [("A", "A.2"), ("A", "A.3")])
    # a name the header already has is skipped
    assert unique_names(["A", "A.2", "A"])[0] == ["A", "A.2", "A.3"]


def test_repeated_header_loads_first_column_as_original(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    header = [*CHICAGO_HEADER, "Primary Type"]
    p = tmp_path / "dup.csv"
    rows = [chicago_row(i) for i in range(3)]
    lines = [",".join(header)] + [",".join([*(r[c] for c in CHICAGO_HEADER), "derived"]) for r in rows]
    p.write_text("\n".join(lines).replace("(41.8835, -87.6278)", '"(41.8835, -87.6278)"') + "\n")
    src = open_source(p)
    assert src.columns[-1] == "Primary Type.2" and any("Primary Type.2" in n for n in src.notes)
    report = ingest_file(store, p, key=TEST_KEY)
    assert report.stored == 3 and any("Primary Type -> Primary Type.2" in n for n in report.notes)
    got = store.incidents(columns=["offense", "extra"])
    assert set(got["offense"]) == {"BATTERY"}  # the original column, not the derived one
    assert all(json.loads(e)["Primary Type.2"] == "derived" for e in got["extra"])
    # the renamed copy is selectable in a mapping
    m = parse_mapping('extends = "chicago"\nname = "chicago_dup"\n[fields]\noccurred_at = "Date"\n'
                      'offense = "Primary Type.2"\nincident_id = "ID"\n')
    assert fit_mapping(m, src.columns).complete


def test_api_query_with_fewer_columns_loads_with_notes(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [{"date": f"2024-01-0{i + 1}T10:00:00.000", "primary_type": "THEFT", "description": "OVER $500",
             "iucr": "0810", "latitude": "41.88", "longitude": "-87.63", "arrest": "false"} for i in range(4)]
    p = write_csv(tmp_path / "api.csv", rows, header=SOCRATA_FEW)
    fit = detect(SOCRATA_FEW)
    assert fit.mapping.name == "chicago_socrata" and "id" in fit.missing and "district" in fit.missing
    report = ingest_file(store, p, key=TEST_KEY)
    assert report.preset == "chicago_socrata" and report.stored == 4
    text = " | ".join(report.notes)
    assert "detected preset 'chicago_socrata'" in text and "district" in text and "content hashes" in text
    assert set(store.incidents(columns=["category"])["category"]) == {"theft"}


def test_strict_keeps_the_refusal(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [{k: chicago_row(1)[k] for k in CHICAGO_HEADER if k not in ("District", "Ward")}]
    p = write_csv(tmp_path / "few.csv", rows, header=[c for c in CHICAGO_HEADER if c not in ("District", "Ward")])
    with pytest.raises(MappingError, match="names columns the file lacks: District, Ward"):
        ingest_file(store, p, key=TEST_KEY, mapping=load_preset("chicago"), strict=True)
    db = str(tmp_path / "cli.duckdb")
    res = runner.invoke(app, ["ingest", str(p), "--preset", "chicago", "--strict", "--db", db])
    assert res.exit_code == 2 and "lacks" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["ingest", str(p), "--preset", "chicago", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    notes = json.loads(res.stdout)["notes"]
    assert any("district" in n and "ward" in n for n in notes)


def test_required_columns_are_still_required(tmp_path: Path) -> None:
    chicago = load_preset("chicago")
    no_date = [c for c in CHICAGO_HEADER if c != "Date"]
    with pytest.raises(MappingError, match="required columns: Date"):
        fit_mapping(chicago, no_date)
    no_offence = [c for c in CHICAGO_HEADER if c not in ("Primary Type", "Description")]
    with pytest.raises(MappingError, match="required"):
        fit_mapping(chicago, no_offence)
    # the offence alone is enough when the category text's second column is missing
    fit = fit_mapping(chicago, [c for c in CHICAGO_HEADER if c != "Description"])
    assert "category_text" not in fit.mapping.fields and "offense" in fit.mapping.fields
    # half a coordinate pair is dropped with its partner
    fit = fit_mapping(chicago, [c for c in CHICAGO_HEADER if c != "Latitude"])
    assert "lat" not in fit.mapping.fields and "lon" not in fit.mapping.fields


def test_detection_does_not_guess_from_too_little() -> None:
    with pytest.raises(InputError, match="unknown header"):
        detect(["ID", "Date", "Primary Type", "Something"])
