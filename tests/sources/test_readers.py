import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.sources.readers import GEOMETRY_LAT, open_source, physical_lines
from tests.conftest import chicago_row, write_csv


def _rows(path: Path) -> pd.DataFrame:
    src = open_source(path)
    return pd.concat([c.frame for c in src.chunks()], ignore_index=True)


def test_semicolon_delimiter_is_sniffed(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "semi.csv", [chicago_row(1), chicago_row(2)], delimiter=";")
    src = open_source(p)
    assert src.delimiter == ";"
    assert _rows(p)["Primary Type"].tolist() == ["BATTERY", "BATTERY"]


def test_bom_and_multiline_fields(tmp_path: Path) -> None:
    p = tmp_path / "bom.csv"
    p.write_bytes('\ufeffa,b\n1,"line one\nline two"\n2,x\n'.encode())
    src = open_source(p)
    assert src.columns == ["a", "b"] and src.multiline
    rows = _rows(p)
    assert rows["b"].iloc[0] == "line one\nline two"
    # record 3 (second data row) starts on physical line 4
    assert physical_lines(src, [2, 3]) == {2: 2, 3: 4}


def test_latin1_fallback_is_reported(tmp_path: Path) -> None:
    p = tmp_path / "latin.csv"
    p.write_bytes("name,place\nJosé,Montréal\n".encode("latin-1"))
    src = open_source(p)
    assert src.encoding == "latin-1" and "Latin-1" in src.notes[0]
    assert _rows(p)["place"].iloc[0] == "Montréal"


def test_gzip_and_zip(tmp_path: Path) -> None:
    plain = write_csv(tmp_path / "x.csv", [chicago_row(1)])
    gz = tmp_path / "x.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    zp = tmp_path / "x.zip"
    with zipfile.ZipFile(zp, "w") as z:
        z.write(plain, "inner.csv")
    for p in (gz, zp):
        assert _rows(p)["ID"].tolist() == ["10000001"]


def test_parquet_and_geojson(tmp_path: Path) -> None:
    frame = pd.DataFrame({"when": pd.to_datetime(["2024-01-01 10:00"]).tz_localize("UTC"), "n": [3]})
    pq = tmp_path / "x.parquet"
    frame.to_parquet(pq)
    rows = _rows(pq)
    assert rows["n"].iloc[0] == "3" and rows["when"].iloc[0].startswith("2024-01-01T10:00")
    gj = tmp_path / "x.geojson"
    gj.write_text('{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"k":"v"},'
                  '"geometry":{"type":"Point","coordinates":[-87.6,41.8]}}]}')
    rows = _rows(gj)
    assert rows["k"].iloc[0] == "v" and rows[GEOMETRY_LAT].iloc[0] == "41.8"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02\xff" * 100, "binary"),
        (b"x" * (10 << 20), "longer than"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.csv"
    p.write_bytes(content)
    with pytest.raises(InputError, match=message):
        open_source(p)


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        open_source("/nonexistent/file.csv")


def test_chunking_counts_records(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "many.csv", [chicago_row(i) for i in range(25)])
    src = open_source(p, chunk_rows=10)
    chunks = list(src.chunks())
    assert [len(c.frame) for c in chunks] == [10, 10, 5]
    assert chunks[-1].records.tolist() == list(range(22, 27))
