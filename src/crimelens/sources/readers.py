"""Chunked readers that turn a source file into raw string columns.

Every reader yields :class:`RawChunk` objects: an Arrow table whose columns are the file's own
column names holding strings (nulls for empty cells) plus the record number of each row, so that
a rejected row can be reported with its place in the file. Reading is streamed in blocks, so
file size is not bounded by memory.

CSV handling: the delimiter is sniffed from the first block (``,`` ``;`` tab ``|``), a UTF-8
byte-order mark is skipped, quoted fields may hold line breaks, and a file that is not valid
UTF-8 is read as Latin-1 (cp1252 superset) with the fallback reported in
:attr:`SourceFile.encoding`. ``.gz`` files and single-member ``.zip`` archives are read
transparently.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crimelens.exceptions import InputError

#: Column names added by the GeoJSON reader for a point geometry.
GEOMETRY_LON = "_geometry_lon"
GEOMETRY_LAT = "_geometry_lat"

_SNIFF_BYTES = 1 << 16
_FIELD_LIMIT = 1 << 30  # narratives can be long; the csv module is only used for line numbers
_DELIMITERS = ",;\t|"
_BLOCK = 16 << 20
#: Errors a damaged file raises while it is read (a bad archive, a truncated stream).
_READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zipfile.BadZipFile, zlib.error, csv.Error)
#: A zip member declared this many times larger than its compressed data (and over
#: :data:`_BOMB_BYTES`) is refused as a likely zip bomb; real CSV exports compress 5-30 times.
_ZIP_OPEN_ERRORS: tuple[type[BaseException], ...] = (*_READ_ERRORS, NotImplementedError, RuntimeError)
_JSON_ERRORS: tuple[type[BaseException], ...] = (*_READ_ERRORS, ValueError)  # JSONDecodeError, UnicodeDecodeError
_BOMB_RATIO = 1000
_BOMB_BYTES = 256 << 20


@dataclass(slots=True)
class RawChunk:
    """A block of raw rows: string columns named as in the file, and their record numbers.

    ``table`` holds the rows as Arrow strings; :attr:`frame` gives them as a pandas frame.
    ``records`` holds the 1-based record number of each row counting the header as record 1,
    which is the physical line number for files without line breaks inside quoted fields.
    ``malformed`` holds the raw text of rows skipped because their field count differs from the
    header's (they are quarantined, never dropped); their exact places are recovered by
    :func:`record_lines` when the load ends.
    """

    table: pa.Table
    records: pd.Series
    malformed: list[str] = field(default_factory=list)
    _frame: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows as a pandas frame of strings (built on first use)."""
        if self._frame is None:
            self._frame = self.table.to_pandas()
        return self._frame


@dataclass(slots=True)
class SourceFile:
    """An opened source file: its header, how it was decoded, and a chunk iterator."""

    path: Path
    kind: str
    columns: list[str]
    encoding: str = "utf-8"
    delimiter: str | None = None
    multiline: bool = False
    notes: list[str] = field(default_factory=list)
    chunk_rows: int = 250_000

    def chunks(self) -> Iterator[RawChunk]:
        """Yield the file's rows in blocks of raw strings."""
        if self.kind == "csv":
            yield from _csv_chunks(self)
        elif self.kind == "parquet":
            yield from _parquet_chunks(self)
        else:
            yield from _geojson_chunks(self)


def open_source(path: str | Path, *, chunk_rows: int = 250_000) -> SourceFile:
    """Open ``path`` and inspect its header.

    Raises
    ------
    InputError
        For a missing or empty file, binary garbage, an unreadable archive, or a header that
        cannot be parsed. The message says what is wrong in one line.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: file is empty")
    name = p.name.lower()
    if name.endswith((".parquet", ".pq")):
        return _open_parquet(p, chunk_rows)
    if name.endswith((".geojson", ".geojson.gz")):
        return _open_geojson(p, chunk_rows)
    return _open_csv(p, chunk_rows)


def _open_binary(p: Path) -> IO[bytes]:
    name = p.name.lower()
    if name.endswith(".gz"):
        return gzip.open(p, "rb")  # type: ignore[return-value]  # GzipFile is a binary IO
    if name.endswith(".zip"):
        try:
            zf = zipfile.ZipFile(p)
        except zipfile.BadZipFile as exc:
            raise InputError(f"{p}: not a readable zip archive") from exc
        members = [m for m in zf.namelist() if not m.endswith("/")]
        if len(members) != 1:
            raise InputError(f"{p}: a zip archive must hold exactly one file, found {len(members)}")
        info = zf.getinfo(members[0])
        if info.file_size > _BOMB_BYTES and info.file_size > _BOMB_RATIO * max(info.compress_size, 1):
            raise InputError(f"{p}: the zip member would expand {info.file_size // max(info.compress_size, 1):,} "
                             "times; refusing a likely zip bomb")
        try:
            return zf.open(members[0])
        except _ZIP_OPEN_ERRORS as exc:  # encrypted or unknown compression
            raise InputError(f"{p}: cannot open the zip member ({_first_line(exc)})") from exc
    return p.open("rb")


@contextmanager
def _reading(p: Path) -> Iterator[None]:
    """Turn the errors of reading a damaged file into one-line :class:`InputError`."""
    try:
        yield
    except _READ_ERRORS as exc:
        raise InputError(f"{p}: cannot read ({_first_line(exc)})") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _is_utf8(p: Path) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with _open_binary(p) as fh:
            while block := fh.read(_BLOCK):
                if block.isascii() and not decoder.getstate()[0]:
                    continue  # ASCII is valid UTF-8 and no multi-byte character is pending
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    except _READ_ERRORS as exc:
        raise InputError(f"{p}: cannot read compressed data ({_first_line(exc)})") from exc
    return True


def _open_csv(p: Path, chunk_rows: int) -> SourceFile:
    try:
        with _open_binary(p) as fh:
            head = fh.read(_SNIFF_BYTES)
    except _READ_ERRORS as exc:
        raise InputError(f"{p}: cannot read ({_first_line(exc)})") from exc
    if not head.strip():
        raise InputError(f"{p}: file is empty")
    if b"\x00" in head:
        raise InputError(f"{p}: binary data, not a delimited text file")
    utf8 = _is_utf8(p)
    encoding = "utf-8" if utf8 else "latin-1"
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    if len(first_line) == len(text) and len(head) == _SNIFF_BYTES:
        raise InputError(f"{p}: the header line is longer than {_SNIFF_BYTES} bytes; not a delimited file")
    delimiter = _sniff_delimiter(text)
    columns = next(csv.reader([first_line.rstrip("\r")], delimiter=delimiter))
    columns = [c.strip() for c in columns]
    if not any(columns):
        raise InputError(f"{p}: the first line holds no column names")
    columns, renamed = unique_names(columns)
    # A quote followed by a line break inside a field: allow newlines in values.
    multiline = _has_multiline(text, delimiter)
    notes = [] if utf8 else ["file is not valid UTF-8; decoded as Latin-1"]
    if renamed:
        notes.append("duplicate column names: the first keeps its name, later ones are renamed "
                     + ", ".join(f"{a} -> {b}" for a, b in renamed))
    return SourceFile(p, "csv", columns, encoding, delimiter, multiline, notes, chunk_rows)


def unique_names(columns: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Column names made unique: the first of a repeated name keeps it, later ones become
    ``NAME.2``, ``NAME.3``... (skipping names the header already has); the renamings made."""
    taken = set(columns)
    seen: set[str] = set()
    out: list[str] = []
    renamed: list[tuple[str, str]] = []
    for name in columns:
        if name not in seen:
            seen.add(name)
            out.append(name)
            continue
        k = 2
        while f"{name}.{k}" in taken:
            k += 1
        new = f"{name}.{k}"
        taken.add(new)
        renamed.append((name, new))
        out.append(new)
    return out, renamed


def _sniff_delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:50] if ln.strip()]
    best, best_score = ",", -1.0
    for d in _DELIMITERS:
        counts = [len(next(csv.reader([ln], delimiter=d))) for ln in lines[:20]]
        if not counts or counts[0] < 2:
            continue
        # consistent field counts across lines, weighted by how many fields the header has
        agree = sum(1 for c in counts if c == counts[0]) / len(counts)
        score = agree * 10 + min(counts[0], 50) / 50
        if score > best_score:
            best, best_score = d, score
    return best


def _has_multiline(text: str, delimiter: str) -> bool:
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error:
        return True
    return any("\n" in cell or "\r" in cell for row in rows[:-1] for cell in row)


def _csv_chunks(src: SourceFile) -> Iterator[RawChunk]:
    read = pacsv.ReadOptions(
        # One parsing thread: the ingest reads ahead in its own thread, and Arrow's parallel
        # read-ahead only delayed the first block (a 16 MB block took 0.9 s instead of 0.4 s).
        use_threads=False,
        # the header as open_source read it (repeated names made unique), so it is skipped here
        column_names=src.columns,
        skip_rows=1,
        block_size=_BLOCK,
        encoding="utf8" if src.encoding == "utf-8" else "latin1",
    )
    skipped: list[str] = []

    def on_invalid(row: Any) -> str:
        skipped.append(str(row.text))
        return "skip"

    parse = pacsv.ParseOptions(
        delimiter=src.delimiter or ",", newlines_in_values=src.multiline, invalid_row_handler=on_invalid
    )
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in src.columns},
        strings_can_be_null=True,
        null_values=[""],
        quoted_strings_can_be_null=True,
        # open_source already read the whole file as UTF-8 (or it is transcoded from Latin-1)
        check_utf8=False,
    )
    record = 2  # the header is record 1
    try:
        with _open_binary(src.path) as fh:
            reader = pacsv.open_csv(fh, read_options=read, parse_options=parse, convert_options=convert)
            try:
                for batch in reader:
                    table = pa.Table.from_batches([batch])
                    for start in range(0, max(table.num_rows, 1), src.chunk_rows):
                        part = table.slice(start, src.chunk_rows)
                        n = part.num_rows
                        bad, skipped[:] = list(skipped), []
                        yield RawChunk(part, pd.Series(range(record, record + n)), bad)
                        record += n
            finally:
                # Arrow reads ahead from the Python file in its own thread: stop it before the
                # file closes, so no native thread calls into Python at interpreter shutdown.
                reader.close()
    except pa.ArrowInvalid as exc:
        msg = str(exc).split("\n")[0]
        if "straddling" in msg or "block size" in msg:
            msg = "a single row is larger than the reader block (16 MB); not a delimited file?"
        raise InputError(f"{src.path}: cannot parse near record {record}: {msg}") from exc
    except (pa.ArrowException, *_READ_ERRORS) as exc:
        raise InputError(f"{src.path}: cannot read near record {record}: {_first_line(exc)}") from exc


def record_lines(src: SourceFile) -> tuple[np.ndarray, np.ndarray]:
    """Physical start lines of the well-formed and of the malformed records of a CSV file.

    Used only when a load met malformed rows or multi-line fields, to report exact line
    numbers in the quarantine: the k-th well-formed data row starts on ``good[k]`` and the j-th
    malformed row on ``bad[j]``.
    """
    good: list[int] = []
    bad: list[int] = []
    width = len(src.columns)
    csv.field_size_limit(_FIELD_LIMIT)
    with _reading(src.path), _open_binary(src.path) as fh:
        text = io.TextIOWrapper(fh, encoding=src.encoding, newline="")
        reader = csv.reader(text, delimiter=src.delimiter or ",")
        line = 1
        for rec, row in enumerate(reader, start=1):
            if rec > 1 and row:
                (good if len(row) == width else bad).append(line)
            line = reader.line_num + 1
    return np.asarray(good, dtype=np.int64), np.asarray(bad, dtype=np.int64)


def physical_lines(src: SourceFile, records: list[int]) -> dict[int, int]:
    """Map record numbers to physical line numbers (they differ when fields hold line breaks)."""
    if not src.multiline or src.kind != "csv" or not records:
        return {r: r for r in records}
    wanted = set(records)
    out: dict[int, int] = {}
    csv.field_size_limit(_FIELD_LIMIT)
    with _reading(src.path), _open_binary(src.path) as fh:
        text = io.TextIOWrapper(fh, encoding=src.encoding, newline="")
        reader = csv.reader(text, delimiter=src.delimiter or ",")
        line = 1
        for rec, _ in enumerate(reader, start=1):
            if rec in wanted:
                out[rec] = line
                if len(out) == len(wanted):
                    break
            line = reader.line_num + 1
    return {r: out.get(r, r) for r in records}


def _open_parquet(p: Path, chunk_rows: int) -> SourceFile:
    try:
        pf = pq.ParquetFile(p)
        names = list(pf.schema_arrow.names)
    except (pa.ArrowException, *_READ_ERRORS) as exc:
        raise InputError(f"{p}: not a readable Parquet file ({_first_line(exc)})") from exc
    columns, renamed = unique_names(names)
    notes = ["duplicate column names: later ones are renamed " + ", ".join(f"{a} -> {b}" for a, b in renamed)
             ] if renamed else []
    return SourceFile(p, "parquet", columns, "binary", None, False, notes, chunk_rows)


def _parquet_chunks(src: SourceFile) -> Iterator[RawChunk]:
    record = 1
    try:
        pf = pq.ParquetFile(src.path)
        for batch in pf.iter_batches(batch_size=src.chunk_rows):
            cols = [_checked_text(col, name) if pa.types.is_string(col.type) or pa.types.is_large_string(col.type)
                    else _stringify(col) for name, col in zip(src.columns, batch.columns, strict=True)]
            table = pa.Table.from_arrays(cols, names=src.columns)
            n = table.num_rows
            yield RawChunk(table, pd.Series(range(record, record + n)))
            record += n
    except (InputError, pa.ArrowException, *_READ_ERRORS) as exc:
        msg = _first_line(exc)
        if "utf8" in msg.lower() and not isinstance(exc, InputError):
            msg = "a text column holds bytes that are not valid UTF-8"
        raise InputError(f"{src.path}: cannot read Parquet rows near record {record}: {msg}") from exc


def _checked_text(col: pa.Array, name: str) -> pa.Array:
    """A text column, refused (:class:`InputError`) where it holds bytes that are not UTF-8
    (Parquet readers do not check; the cleaning kernels would fail on them)."""
    try:
        col.validate(full=True)
    except pa.ArrowInvalid as exc:
        raise InputError(f"column {name!r} holds bytes that are not valid UTF-8") from exc
    return col if pa.types.is_string(col.type) else col.cast(pa.string())


def _stringify(col: pa.Array) -> pa.Array:
    """A Parquet column as text: nested values (lists, structs, maps) as JSON, bytes as UTF-8."""
    t = col.type
    if pa.types.is_timestamp(t) and t.tz is not None:
        # keep the offset so the time parser sees an absolute instant
        return pa.array(pd.Series(col.to_pandas()).map(lambda v: v.isoformat() if pd.notna(v) else None))
    if pa.types.is_nested(t):
        return pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                         for v in col.to_pylist()], type=pa.string())
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return pa.array([None if v is None else v.decode("utf-8", errors="replace") for v in col.to_pylist()],
                        type=pa.string())
    try:
        return col.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in col.to_pylist()], type=pa.string())


def _open_geojson(p: Path, chunk_rows: int) -> SourceFile:
    features = _load_features(p)
    keys: dict[str, None] = {}
    for f in features[:1000]:
        keys.update(dict.fromkeys(str(k) for k in _properties(f)))
    columns = [*keys, GEOMETRY_LON, GEOMETRY_LAT]
    return SourceFile(p, "geojson", columns, "utf-8", None, False, [], chunk_rows)


def _load_features(p: Path) -> list[dict[str, Any]]:
    try:
        opener = gzip.open if p.name.lower().endswith(".gz") else open
        with opener(p, "rt", encoding="utf-8") as fh:
            doc = json.load(fh)
    except RecursionError as exc:
        raise InputError(f"{p}: not valid GeoJSON (arrays or objects nested too deeply)") from exc
    except _JSON_ERRORS as exc:  # JSONDecodeError is a ValueError
        raise InputError(f"{p}: not valid GeoJSON ({_first_line(exc)})") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise InputError(f"{p}: GeoJSON must be a FeatureCollection")
    feats = doc.get("features")
    if not isinstance(feats, list):
        raise InputError(f"{p}: FeatureCollection has no features list")
    bad = next((i for i, f in enumerate(feats) if not isinstance(f, dict)), None)
    if bad is not None:
        raise InputError(f"{p}: feature {bad + 1} is not a JSON object")
    return feats


def _properties(feature: dict[str, Any]) -> dict[str, Any]:
    props = feature.get("properties")
    return props if isinstance(props, dict) else {}


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


def _geojson_chunks(src: SourceFile) -> Iterator[RawChunk]:
    features = _load_features(src.path)
    names = src.columns[:-2]
    for start in range(0, len(features), src.chunk_rows):
        rows = []
        for f in features[start : start + src.chunk_rows]:
            props = _properties(f)
            geom = f.get("geometry") or {}
            coords = geom.get("coordinates") if isinstance(geom, dict) and geom.get("type") == "Point" else None
            row = {k: _text(props.get(k)) for k in names}
            if isinstance(coords, list) and len(coords) >= 2 and not any(isinstance(c, dict | list)
                                                                         for c in coords[:2]):
                row[GEOMETRY_LON], row[GEOMETRY_LAT] = str(coords[0]), str(coords[1])
            else:
                row[GEOMETRY_LON] = row[GEOMETRY_LAT] = None
            rows.append(row)
        frame = pd.DataFrame(rows, columns=src.columns, dtype=object)
        n = len(frame)
        table = pa.Table.from_pandas(frame, schema=pa.schema([(c, pa.string()) for c in src.columns]),
                                     preserve_index=False)
        yield RawChunk(table, pd.Series(range(start + 1, start + 1 + n), index=frame.index), [], frame)
