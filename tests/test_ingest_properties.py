"""Property-based tests (SECURITY.md DUR-07): arbitrary content never crashes ingest, and every row is
accounted for."""

import csv

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import CHICAGO_HEADER, TEST_KEY, chicago_row

cell = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "nan", "inf", "-inf", "0", "90", "-999", "1e308", "02/30/2024 10:00:00 AM",
                     "13/45/2024 99:99:99 PM", "1899-01-01", "9999-12-31 23:59:59", "true", "NULL"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
)
row_overrides = st.dictionaries(
    st.sampled_from(["ID", "Date", "Primary Type", "Description", "Latitude", "Longitude", "X Coordinate",
                     "Y Coordinate", "Arrest", "Domestic", "Beat"]),
    cell, max_size=6,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row_overrides, min_size=1, max_size=12))
def test_arbitrary_rows_never_crash_and_balance(tmp_path_factory, rows) -> None:  # type: ignore[no-untyped-def]
    d = tmp_path_factory.mktemp("prop")
    path = d / "f.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CHICAGO_HEADER)
        w.writeheader()
        for i, over in enumerate(rows):
            clean = {k: v.replace("\x00", "") for k, v in over.items()}
            w.writerow(chicago_row(i, **clean))
    store = connect(str(d / "s.duckdb"))
    try:
        r = ingest_file(store, path, key=TEST_KEY, now=pd.Timestamp("2025-01-01", tz="UTC"))
        assert r.read == len(rows)
        assert r.balanced()
        stored = store.info()["incidents"]
        assert stored == r.stored
        assert len(store.quarantine()) == r.quarantined
        inc = store.incidents()
        assert inc["lat"].dropna().between(-90, 90).all() and inc["lon"].dropna().between(-180, 180).all()
    finally:
        store.close()


@settings(max_examples=20, deadline=None)
@given(st.binary(min_size=1, max_size=400))
def test_arbitrary_bytes_give_clear_errors_or_balance(tmp_path_factory, blob: bytes) -> None:  # type: ignore[no-untyped-def]
    from crimelens.exceptions import CrimelensError
    from crimelens.sources.mapping import load_preset

    d = tmp_path_factory.mktemp("bytes")
    path = d / "f.csv"
    path.write_bytes(",".join(CHICAGO_HEADER).encode() + b"\n" + blob)
    store = connect(str(d / "s.duckdb"))
    try:
        r = ingest_file(store, path, key=TEST_KEY, mapping=load_preset("chicago"))
        assert r.balanced()
    except CrimelensError as exc:
        assert str(exc)
    finally:
        store.close()


