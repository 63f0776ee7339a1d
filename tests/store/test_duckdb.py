import multiprocessing as mp
from pathlib import Path

import pytest

from crimelens.exceptions import StoreBusyError
from crimelens.filters import IncidentFilter
from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import TEST_KEY, chicago_row, write_csv


def _hold_lock(path: str, ready, release) -> None:  # type: ignore[no-untyped-def]
    s = connect(path)
    ready.set()
    release.wait(30)
    s.close()


def test_second_writer_gets_busy_error(store_path: Path) -> None:
    ctx = mp.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(store_path), ready, release))
    proc.start()
    try:
        assert ready.wait(60)
        with pytest.raises(StoreBusyError, match="busy"):
            connect(str(store_path))
    finally:
        release.set()
        proc.join(30)


def test_schema_version_and_plain_sql_access(store, store_path: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ingest_file(store, write_csv(tmp_path / "a.csv", [chicago_row(i) for i in range(3)]), key=TEST_KEY)
    store.close()
    import duckdb

    con = duckdb.connect(str(store_path), read_only=True)
    assert con.execute("SELECT count(*) FROM incidents").fetchone() == (3,)
    assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (2,)
    con.close()


def test_counts_are_pushed_down_and_filtered(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [chicago_row(i, Date=f"01/{10 + i % 3}/2024 10:00:00 AM") for i in range(9)]
    rows[0]["Primary Type"], rows[0]["Description"] = "THEFT", "OVER $500"
    ingest_file(store, write_csv(tmp_path / "a.csv", rows), key=TEST_KEY)
    by_day = store.counts(["day"])
    assert by_day["count"].tolist() == [3, 3, 3]
    theft = store.counts(["category"], IncidentFilter(categories=("property",)))
    assert theft.to_dict("records") == [{"category": "theft", "count": 1}]
    cells = store.counts(["cell:500"])
    assert cells["count"].sum() == 9 and {"cell_x", "cell_y"} <= set(cells.columns)
    info = store.info()
    assert info["incidents"] == 9 and info["by_category"] == {"simple_assault": 8, "theft": 1}


def test_read_only_store_missing_is_clear(tmp_path: Path) -> None:
    from crimelens.exceptions import InputError

    with pytest.raises(InputError, match="no such store"):
        connect(str(tmp_path / "none.duckdb"), read_only=True)
