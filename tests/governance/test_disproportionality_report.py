"""The report's stops-by-group section."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import TEST_KEY, chicago_row, write_csv
from tests.sources.kinds_files import STOPS_HEADER, stop_row, write


def test_custom_report_has_the_stops_section(tmp_path: Path) -> None:
    pytest.importorskip("jinja2")
    from crimelens.reports import ReportSpec, build_context
    from crimelens.reports.render import render_html

    rows = [stop_row(i, ethnicity="Black" if i % 3 == 0 else "White") for i in range(60)]
    with connect(str(tmp_path / "s.duckdb")) as store:
        ingest_file(store, write(tmp_path / "stops.csv", STOPS_HEADER, rows), key=TEST_KEY)
        crimes = [chicago_row(i, Date=f"01/{1 + i % 28:02d}/2024 10:00:00 AM") for i in range(40)]
        ingest_file(store, write_csv(tmp_path / "c.csv", crimes), key=TEST_KEY)
        spec = ReportSpec(type="custom", start=pd.Timestamp("2024-01-01"), end=pd.Timestamp("2024-02-01"),
                          forecast_model=None, alerts=False,
                          extra={"population": pd.DataFrame({"group": ["White", "Black"],
                                                             "population": [40_000, 10_000]})})
        ctx = build_context(store, spec)
    section = ctx["disproportionality"]
    assert section["records"] == 60 and {g["group"] for g in section["groups"]} == {"White", "Black"}
    assert "crimelens audit stops" in section["cli"]
    assert ctx["quality"]["incidents"] == 40  # the crime sections still count crimes only
    html = render_html(ctx)
    assert "Stops by group against the population" in html and "reference" in html
