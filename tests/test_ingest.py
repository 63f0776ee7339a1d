"""End-to-end ingest accounting: every row is stored, updated, a duplicate or quarantined."""

from pathlib import Path

import pandas as pd
import pytest

from crimelens.exceptions import InputError, MappingError
from crimelens.ingest import ingest_file
from crimelens.sources.mapping import load_preset, parse_mapping
from tests.conftest import CHICAGO_HEADER, TEST_KEY, chicago_row, write_csv

NOW = pd.Timestamp("2024-06-01", tz="UTC")


def load(store, path, **kw):  # type: ignore[no-untyped-def]
    kw.setdefault("now", NOW)
    report = ingest_file(store, path, key=TEST_KEY, **kw)
    assert report.balanced(), report
    return report


def test_clean_file_is_stored_with_canonical_values(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = write_csv(tmp_path / "c.csv", [chicago_row(1), chicago_row(2, **{"Primary Type": "BURGLARY",
                                                                         "Description": "FORCIBLE ENTRY"})])
    r = load(store, p)
    assert (r.read, r.stored, r.preset) == (2, 2, "chicago")
    df = store.incidents()
    assert df["category"].tolist() == ["simple_assault", "burglary"]
    first = df.iloc[0]
    assert first["occurred_at"] == pd.Timestamp("2024-01-16 05:30", tz="UTC")  # 11:30 PM CST
    assert first["domestic"] and first["time_precision"] == "minute" and first["location_precision"] == "block"
    assert first["crs"] == "EPSG:32616" and first["h3_9"] is not None
    assert '"Case Number":"JA100001"' in first["extra"]


def test_reingest_same_file_is_a_noop(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = write_csv(tmp_path / "c.csv", [chicago_row(i) for i in range(5)])
    load(store, p)
    again = load(store, p)
    assert again.skipped and again.read == 0
    assert store.info()["incidents"] == 5


def test_overlapping_file_updates_and_duplicates(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    load(store, write_csv(tmp_path / "a.csv", [chicago_row(i) for i in range(5)]))
    rows = [chicago_row(i) for i in range(3, 8)]
    rows[0]["Arrest"] = "true"  # id 3 changed
    r = load(store, write_csv(tmp_path / "b.csv", rows))
    assert (r.read, r.stored, r.updated, r.duplicates) == (5, 3, 1, 1)
    df = store.incidents()
    assert len(df) == 8
    assert df.set_index("incident_id").loc["10000003", "arrest"]


def test_same_id_twice_in_one_file(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [chicago_row(1), chicago_row(1), chicago_row(1, Arrest="true")]
    r = load(store, write_csv(tmp_path / "d.csv", rows))
    assert (r.stored, r.updated, r.duplicates) == (1, 1, 1)
    assert bool(store.incidents()["arrest"].iloc[0]) is True  # the last version wins


def test_bad_rows_are_quarantined_with_reason_and_line(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    no_xy = {"X Coordinate": "", "Y Coordinate": ""}
    rows = [chicago_row(1), chicago_row(2, Date="01/01/1899 10:00:00 AM"),
            chicago_row(3, Date="12/31/2100 10:00:00 AM"), chicago_row(4, Date="garbage"), chicago_row(5, ID=""),
            chicago_row(6, Latitude="nan", Longitude="inf", **no_xy)]
    r = load(store, write_csv(tmp_path / "q.csv", rows))
    assert r.by_reason == {"date_too_old": 1, "date_in_future": 1, "bad_date": 1, "missing_id": 1}
    assert r.stored == 2 and r.flags == {"coords_invalid": 1}
    q = store.quarantine()
    assert sorted(q["line"].tolist()) == [3, 4, 5, 6]
    assert set(q["file"]) == {"q.csv"} and all('"Primary Type"' in raw for raw in q["raw"])
    no_loc = store.incidents().set_index("incident_id").loc["10000006"]
    assert no_loc["location_precision"] == "none" and pd.isna(no_loc["lat"])


def test_unmapped_categories_are_counted(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = load(store, write_csv(tmp_path / "u.csv", [chicago_row(1, **{"Primary Type": "MADE UP OFFENSE"})]))
    assert r.unmapped == {"made up offense domestic battery simple": 1}
    assert store.incidents()["category"].tolist() == ["unknown"]


def test_empty_and_header_only(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "e.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        load(store, empty)
    header = write_csv(tmp_path / "h.csv", [])
    r = load(store, header)
    assert r.read == 0 and "no rows" in r.notes[0]


def test_unknown_header_and_missing_mapped_column(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "x.csv"
    p.write_text("foo,bar\n1,2\n")
    with pytest.raises(InputError, match="unknown header"):
        load(store, p)
    drifted = write_csv(tmp_path / "drift.csv", [chicago_row(1)], header=CHICAGO_HEADER)
    text = drifted.read_text().replace("Primary Type", "Primary_Type", 1)
    drifted.write_text(text)
    with pytest.raises(MappingError, match="Primary Type"):
        load(store, drifted, mapping=load_preset("chicago"))
    assert store.info()["incidents"] == 0


def test_mapping_requiring_location_quarantines(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m = parse_mapping('name = "geo"\nrequire_location = true\n[fields]\noccurred_at = "d"\nlat = "la"\nlon = "lo"\n'
                      '[categories]\ndefault = "theft"\n')
    p = tmp_path / "g.csv"
    p.write_text("d,la,lo\n2024-01-01 10:00,41.8,-87.6\n2024-01-01 11:00,,\n")
    r = load(store, p, mapping=m)
    assert r.stored == 1 and r.by_reason == {"no_location": 1}


def test_personal_fields_are_pseudonymised_and_kept_apart(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "m.csv"
    p.write_text('IncidentID,IncidentType,CaseNumber,IncidentDate,Suspect,Arrested,Address,Victim,Details,ReleasedBy,'
                 'DateModified\n1,Robbery,C1,2023/05/01 10:00:00+00,John Doe,,100 block Main St,Jane Roe,'
                 '"Jane Roe was robbed\nby John Doe",Sgt,2023/05/02\n'
                 '2,Theft,C2,2023/05/02 10:00:00+00,JOHN  DOE,,200 block Main St,,,Sgt,2023/05/03\n')
    load(store, p)
    inc = store.incidents()
    assert inc["suspect_ref"].iloc[0] == inc["suspect_ref"].iloc[1]  # normalised before hashing
    assert inc["suspect_ref"].iloc[0].startswith("p") and "John" not in inc.to_string()
    assert "Jane" not in "".join(inc["extra"].dropna())
    full = store.incidents(include_personal=True)
    assert full["narrative"].iloc[0].startswith("Jane Roe")


def test_mapping_with_only_some_personal_fields(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    m = parse_mapping('name = "one"\n[fields]\noccurred_at = "d"\nsuspect = "s"\n[categories]\ndefault = "theft"\n')
    p = tmp_path / "s.csv"
    p.write_text("d,s\n2024-01-01 10:00,Ann Lee\n2024-01-01 11:00,\n")
    assert load(store, p, mapping=m).stored == 2
    full = store.incidents(include_personal=True)
    assert full["suspect"].iloc[0] == "Ann Lee" and pd.isna(full["suspect"].iloc[1])
    assert full["victim"].isna().all() and full["narrative"].isna().all()


def test_malformed_rows_are_quarantined_with_exact_lines(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = write_csv(tmp_path / "m.csv", [chicago_row(i) for i in range(6)])
    lines = p.read_text().splitlines()
    lines.insert(3, "only,three,fields")  # becomes physical line 4
    lines.insert(6, "x" * 2000 + "," * 40)  # a long row with too many fields, physical line 7
    lines[8] = lines[8].replace("01/15/2024 11:30:00 PM", "not a date")  # physical line 9
    p.write_text("\n".join(lines) + "\n")
    r = load(store, p)
    assert r.read == 8 and r.by_reason == {"malformed_row": 2, "bad_date": 1} and r.stored == 5
    q = store.quarantine().sort_values("line")
    assert q["line"].tolist() == [4, 7, 9]
    assert "only,three,fields" in q["raw"].iloc[0]


@pytest.mark.parametrize("path", ["first_load", "source_already_stored", "tracker_full"])
def test_ids_repeated_across_chunks(store, tmp_path: Path, monkeypatch, path: str) -> None:  # type: ignore[no-untyped-def]
    """An id met again in a later chunk is a duplicate or an update, whichever way the writer finds it.

    A load remembers the ids it routed (an IdTracker) and asks the table only for ids stored by
    earlier loads; a tracker past its limit stages every later row. All three must account alike.
    """
    import crimelens.store.duckdb as duckdb_store
    from crimelens.store.base import ChunkRouter

    if path == "source_already_stored":
        load(store, write_csv(tmp_path / "old.csv", [chicago_row(900 + i) for i in range(3)]))
    if path == "tracker_full":
        monkeypatch.setattr(duckdb_store, "ChunkRouter", lambda: ChunkRouter(tracker_limit=15))
    rows = [chicago_row(i) for i in range(40)]
    rows += [chicago_row(5), chicago_row(12, Arrest="true"), chicago_row(33), chicago_row(38, Arrest="true")]
    r = load(store, write_csv(tmp_path / "rep.csv", rows), chunk_rows=10)
    assert (r.read, r.stored, r.updated, r.duplicates) == (44, 40, 2, 2)
    df = store.incidents().set_index("incident_id")
    assert len(df) == 40 + (3 if path == "source_already_stored" else 0)
    assert df.index.is_unique
    assert bool(df.loc["10000012", "arrest"]) and bool(df.loc["10000038", "arrest"])  # the last version wins
    assert not bool(df.loc["10000013", "arrest"])


@pytest.mark.parametrize("prior", [False, True])
def test_the_last_version_wins_when_an_id_repeats_within_a_chunk_and_again_later(  # type: ignore[no-untyped-def]
        store, tmp_path: Path, prior: bool) -> None:
    """Id 3 twice in the first chunk (so staged), then once more, changed, in the third chunk."""
    if prior:
        load(store, write_csv(tmp_path / "old.csv", [chicago_row(900)]))
    rows = [chicago_row(i) for i in range(30)]
    rows[5] = chicago_row(3)
    rows[25] = chicago_row(3, Arrest="true")
    r = load(store, write_csv(tmp_path / "late.csv", rows), chunk_rows=10)
    assert (r.read, r.stored, r.updated, r.duplicates) == (30, 28, 1, 1)
    df = store.incidents().set_index("incident_id")
    assert df.index.is_unique
    assert bool(df.loc["10000003", "arrest"])  # the file's last version of id 3


@pytest.mark.parametrize("fail_in", ["cleaning", "store"])
def test_a_failure_mid_load_leaves_nothing(store, tmp_path: Path, monkeypatch, fail_in: str) -> None:  # type: ignore[no-untyped-def]
    import crimelens.ingest as ingest_module
    from crimelens.store.duckdb import DuckDBBatch

    p = write_csv(tmp_path / "a.csv", [chicago_row(i) for i in range(50)])
    threads = store.con.execute("SELECT current_setting('threads')").fetchone()
    calls = {"n": 0}

    def failing(original):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kw):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("boom")
            return original(*args, **kw)
        return wrapper

    if fail_in == "cleaning":
        monkeypatch.setattr(ingest_module, "clean_chunk", failing(ingest_module.clean_chunk))
    else:
        monkeypatch.setattr(DuckDBBatch, "write", failing(DuckDBBatch.write))
    with pytest.raises(RuntimeError, match="boom"):
        load(store, p, chunk_rows=10)
    assert store.info()["incidents"] == 0 and store.info()["files"] == 0
    assert store.con.execute("SELECT current_setting('threads')").fetchone() == threads
    monkeypatch.undo()
    assert load(store, p, chunk_rows=10).stored == 50
