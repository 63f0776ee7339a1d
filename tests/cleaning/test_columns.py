"""The raw columns no field takes are kept as one valid JSON object per row."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from crimelens.cleaning.columns import field_text, json_objects

_TEXT = st.one_of(st.none(), st.text(max_size=12))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=8), st.integers(0, 3))
def test_json_objects_round_trip_any_text(rows: list[tuple[str | None, str | None]], start: int) -> None:
    table = pa.table({"Case \"No\"": pa.array([a for a, _ in rows], pa.string()),
                      "Location": pa.array([b for _, b in rows], pa.string())})
    sliced = table.slice(min(start, len(rows) - 1))  # a slice shares its parent's byte buffer
    got = [json.loads(v) for v in json_objects(sliced).to_pylist()]
    def shown(v: str | None) -> str | None:  # control characters other than \n \r \t become U+FFFD
        return None if v is None else "".join(c if c >= " " or c in "\n\r\t" else "\ufffd" for c in v)

    assert got == [{k: shown(v) for k, v in row.items()} for row in sliced.to_pylist()]


def test_quotes_backslashes_and_controls_are_escaped_in_a_later_chunk() -> None:
    col = pa.chunked_array([["plain", "text"], ['say "hi"', "a\\b\x01"]])
    got = [json.loads(v) for v in json_objects(pa.table({"note": col})).to_pylist()]
    assert [g["note"] for g in got] == ["plain", "text", 'say "hi"', "a\\b\ufffd"]


_SPACEY = st.one_of(st.none(), st.text(alphabet=st.sampled_from(" \t\n\x0b\x1c\x1f\u00a0\u3000\u2028ab\u00e9\"x"),
                                       max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.lists(_SPACEY, min_size=1, max_size=10), st.integers(0, 4), st.integers(1, 3))
def test_field_text_trims_and_nulls_like_the_plain_kernels(values: list[str | None], start: int, parts: int) -> None:
    col = pa.array(values, pa.string()).slice(min(start, len(values) - 1))  # a slice: offsets start mid-buffer
    cols = [col] * parts
    if parts == 1:
        want = pc.utf8_trim_whitespace(col)
    else:
        joined = pc.binary_join_element_wise(*[pc.fill_null(pc.utf8_trim_whitespace(c), "") for c in cols], " ")
        want = pc.utf8_trim_whitespace(joined)
    want = pc.if_else(pc.equal(want, ""), pa.scalar(None, pa.string()), want)
    assert field_text(cols).to_pylist() == want.to_pylist()


def test_json_objects_of_no_columns_are_empty_objects() -> None:
    assert json_objects(pa.table({"a": pa.array(["x", None], pa.string())}).select([])).to_pylist() == ["{}", "{}"]
