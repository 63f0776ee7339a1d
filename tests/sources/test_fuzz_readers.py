"""Fuzz the readers: mutated files in every format end in a load or one line and exit 2, never a crash.

Each case starts from a real file (the first rows of the shared Chicago export when it is
there, generated Chicago rows otherwise), writes it as CSV, gzip, zip, Parquet and GeoJSON,
and applies seeded mutations (byte flips, truncation, inserted NUL or invalid UTF-8, quotes,
repeated or deleted blocks, deep nesting). In process, every load either balances or raises a
:class:`CrimelensError` with the store unchanged, within a time bound. In a subprocess, the CLI
exits 0 or 2 with no traceback and no fatal error at interpreter shutdown.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crimelens.exceptions import CrimelensError
from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import CHICAGO_HEADER, REPO, SHARED, TEST_KEY, chicago_row

FORMATS = ("csv", "csv.gz", "zip", "parquet", "geojson")
MUTATIONS_PER_FORMAT = 12
BOUND_S = 20.0  # no single load of these small files may take longer


def _base_rows(real: bool) -> tuple[list[str], list[dict[str, str]]]:
    if real:
        path = SHARED / "chicago_2015_02" / "chicagoCrimes10k.csv"
        if not path.exists():
            pytest.skip(f"real data not available: {path}")
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            rows = [r for _, r in zip(range(300), reader, strict=False)]
        return list(reader.fieldnames or []), rows
    return CHICAGO_HEADER, [chicago_row(i, Date=f"01/{1 + i % 28:02d}/2024 0{i % 10}:30:00 PM") for i in range(200)]


def _csv_bytes(header: list[str], rows: list[dict[str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _geojson_bytes(header: list[str], rows: list[dict[str, str]]) -> bytes:
    feats = []
    for r in rows:
        try:
            coords: list[float] | None = [float(r["Longitude"]), float(r["Latitude"])]
        except (KeyError, ValueError):
            coords = None
        geom = {"type": "Point", "coordinates": coords} if coords else None
        feats.append({"type": "Feature", "properties": {k: r.get(k) for k in header}, "geometry": geom})
    return json.dumps({"type": "FeatureCollection", "features": feats}).encode("utf-8")


def _parquet_bytes(header: list[str], rows: list[dict[str, str]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({k: [r.get(k) for r in rows] for k in header}), buf)
    return buf.getvalue()


def _mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One seeded mutation of ``data``."""
    b = bytearray(data)
    n = len(b)
    kind = int(rng.integers(0, 8))
    at = int(rng.integers(0, max(n, 1)))
    if kind == 0:  # flip bytes
        for i in rng.integers(0, n, size=int(rng.integers(1, 16))):
            b[int(i)] ^= int(rng.integers(1, 256))
    elif kind == 1:  # truncate
        del b[at:]
    elif kind == 2:  # NUL
        b[at:at] = b"\x00" * int(rng.integers(1, 4))
    elif kind == 3:  # invalid UTF-8
        b[at:at] = b"\xff\xfe\xc3"
    elif kind == 4:  # stray quote or line break
        b[at:at] = bytes([rng.choice([ord('"'), ord("\n"), ord(","), ord("\r")])])
    elif kind == 5:  # repeat a block
        end = min(n, at + int(rng.integers(1, 4096)))
        b[at:at] = b[at:end] * int(rng.integers(2, 8))
    elif kind == 6:  # delete a block
        del b[at:at + int(rng.integers(1, 4096))]
    else:  # random bytes
        b[at:at] = rng.integers(0, 256, size=int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
    return bytes(b)


def _pack(fmt: str, header: list[str], rows: list[dict[str, str]], rng: np.random.Generator) -> tuple[str, bytes]:
    """A mutated file of ``fmt``: compressed formats are mutated inside or outside the archive."""
    if fmt == "parquet":
        return "x.parquet", _mutate(_parquet_bytes(header, rows), rng)
    if fmt == "geojson":
        return "x.geojson", _mutate(_geojson_bytes(header, rows), rng)
    inner = _csv_bytes(header, rows)
    outside = bool(rng.integers(0, 2))
    if not outside:
        inner = _mutate(inner, rng)
    if fmt == "csv":
        return "x.csv", inner if not outside else _mutate(inner, rng)
    if fmt == "csv.gz":
        packed = gzip.compress(inner)
        return "x.csv.gz", _mutate(packed, rng) if outside else packed
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.csv", inner)
    return "x.zip", _mutate(buf.getvalue(), rng) if outside else buf.getvalue()


def _snapshot(db: Path) -> tuple[int, ...]:
    with connect(str(db), read_only=True) as s:
        got = s.execute("SELECT (SELECT count(*) FROM incidents), (SELECT count(*) FROM quarantine), "
                        "(SELECT count(*) FROM files), (SELECT count(*) FROM incident_personal)")
        return tuple(int(v) for v in got.iloc[0])


@pytest.mark.parametrize("real", [False, pytest.param(True, marks=pytest.mark.real_data)], ids=["generated", "real"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_mutated_files_load_or_fail_in_one_line(fmt: str, real: bool, tmp_path: Path) -> None:
    header, rows = _base_rows(real)
    rng = np.random.default_rng(FORMATS.index(fmt) + 100 * real)
    db = tmp_path / "s.duckdb"
    connect(str(db)).close()
    outcomes: dict[str, int] = {"loaded": 0, "refused": 0}
    for i in range(MUTATIONS_PER_FORMAT):
        name, data = _pack(fmt, header, rows, rng)
        path = tmp_path / f"{i}-{name}"
        path.write_bytes(data)
        before = _snapshot(db)
        started = time.perf_counter()
        store = connect(str(db))
        try:
            report = ingest_file(store, path, key=TEST_KEY)
        except CrimelensError as exc:
            message = str(exc)
            assert message and "\n" not in message.strip(), message
            outcomes["refused"] += 1
            store.close()
            assert _snapshot(db) == before, f"{path.name}: a refused load changed the store"
        else:
            store.close()
            assert report.balanced(), report
            outcomes["loaded"] += 1
        assert time.perf_counter() - started < BOUND_S, f"{path.name} took too long"
    assert sum(outcomes.values()) == MUTATIONS_PER_FORMAT


def _deep_geojson(p: Path) -> None:
    p.write_text('{"type":"FeatureCollection","features":[' + "[" * 200_000 + "]" * 200_000 + "]}")


def _list_parquet(p: Path) -> None:
    row = chicago_row(1)
    table = pa.table({**{k: [v] for k, v in row.items()}, "tags": pa.array([[1, 2]])})
    pq.write_table(table, p)


def _bad_utf8_parquet(p: Path) -> None:
    row = chicago_row(1)
    cols = {k: pa.array([v]) for k, v in row.items()}
    cols["Block"] = pa.array([b"\xff\xfe BAD"], pa.binary()).view(pa.string())  # not checked on write
    pq.write_table(pa.table(cols), p)


def _zip_bomb(p: Path) -> None:
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zf, \
            zf.open("x.csv", "w", force_zip64=True) as fh:
        fh.write(_csv_bytes(CHICAGO_HEADER, [chicago_row(1)]))
        block = b"a" * (1 << 24)
        for _ in range(32):  # 512 MB of one endless row
            fh.write(block)


def _mutated_csv(p: Path) -> None:
    rng = np.random.default_rng(7)
    data = _csv_bytes(CHICAGO_HEADER, [chicago_row(i) for i in range(50)])
    p.write_bytes(_mutate(_mutate(data, rng), rng))


def _mutated_zip(p: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.csv", _csv_bytes(CHICAGO_HEADER, [chicago_row(i) for i in range(500)]))
    data = bytearray(buf.getvalue())
    data[len(data) // 2] ^= 0xFF  # corrupt the deflate stream
    p.write_bytes(bytes(data))


CASES: dict[str, tuple[str, Callable[[Path], None], str | None]] = {
    "nested_geojson": ("deep.geojson", _deep_geojson, "nested too deeply"),
    "parquet_list_column": ("list.parquet", _list_parquet, None),  # loads; the list is kept as JSON
    "parquet_invalid_utf8": ("bad.parquet", _bad_utf8_parquet, "not valid UTF-8"),
    "zip_bomb": ("bomb.zip", _zip_bomb, "zip bomb"),
    "corrupt_zip": ("corrupt.zip", _mutated_zip, None),
    "mutated_csv": ("m.csv", _mutated_csv, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_cli_exits_cleanly(case: str, tmp_path: Path) -> None:
    """The issue's cases, through the CLI in a fresh interpreter: exit 0 or 2, no traceback, no fatal error."""
    name, make, expected = CASES[case]
    path = tmp_path / name
    make(path)
    db = tmp_path / "s.duckdb"
    connect(str(db)).close()
    before = _snapshot(db)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    proc = subprocess.run([sys.executable, "-c", "from crimelens.cli.app import main; main()", "ingest", str(path),
                           "--preset", "chicago",
                           "--db", str(db)], capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
                          check=False)
    err = proc.stderr
    assert "Traceback" not in err and "Fatal Python error" not in err, err
    assert proc.returncode in (0, 2), (proc.returncode, err)
    if proc.returncode == 2:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
        assert _snapshot(db) == before
    if expected is not None:
        assert proc.returncode == 2 and expected in err, err
    if case == "parquet_list_column":
        assert proc.returncode == 0, err
        with connect(str(db), read_only=True) as s:
            assert json.loads(s.incidents(columns=["extra"])["extra"][0])["tags"] == "[1, 2]"
