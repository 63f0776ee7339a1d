"""CompStat and custom reports: HTML and PDF, every section present, the PDF renders to a non-blank PNG."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.notify.tables import read_alerts
from crimelens.reports import ReportSpec, build_context, render_html, write_report
from crimelens.store.duckdb import DuckDBStore


@pytest.fixture(scope="module")
def compstat_ctx(store_path: Path) -> dict[str, Any]:
    s = DuckDBStore(store_path, read_only=True)
    try:
        return build_context(s, ReportSpec(type="compstat"))
    finally:
        s.close()


def test_compstat_context_has_every_section(compstat_ctx: dict[str, Any], store: DuckDBStore) -> None:
    ctx = compstat_ctx
    comp = ctx["compstat"]
    assert [w["name"] for w in comp["windows"]] == ["Week", "28 days", "Year to date"]
    week_end = pd.Timestamp(comp["week_end"])
    assert week_end.weekday() == 6  # CompStat weeks end on Sunday
    total = next(r for r in comp["rows"] if r["total"])
    counted = store.execute(
        "SELECT count(*) AS n FROM incidents WHERE category_group <> 'non_crime' AND occurred_at >= ? AND "
        "occurred_at < ?", [week_end - pd.Timedelta(days=6), week_end + pd.Timedelta(days=1)])
    assert total["cells"][0]["current"] == int(counted["n"].iloc[0])
    for r in comp["rows"]:
        for c in r["cells"]:
            assert 0 <= c["p"] <= 1 and c["diff"] == c["current"] - c["last_year"]
    assert ctx["trend"]["image"].startswith("data:image/png;base64,")
    assert ctx["hotspots"]["image"].startswith("data:image/png;base64,")
    assert ctx["forecast"]["rows"] and ctx["forecast"]["rows"][0]["rank"] == 1
    open_alerts = read_alerts(store)
    assert {a["alert_id"] for a in ctx["alerts"]} == {a.alert_id for a in open_alerts} and open_alerts
    assert any(c.startswith("crimelens compstat --as-of") for c in ctx["commands"])
    assert any(c.startswith("crimelens hotspots --method gistar") for c in ctx["commands"])
    assert "geocoded" in ctx["quality"]["footer"]


def test_html_is_self_contained(compstat_ctx: dict[str, Any], tmp_path: Path) -> None:
    html = render_html(compstat_ctx)
    assert html.count("<img") == 2 and "http://" not in html and "https://" not in html
    for needle in ("Offences: week, 28 days", "Hot spots", "Top forecast cells", "Open alerts", "Data quality"):
        assert needle in html
    assert compstat_ctx["alerts"][0]["alert_id"] in html
    out = write_report(compstat_ctx, tmp_path / "r.html")
    assert out.read_text(encoding="utf-8") == html


def test_pdf_converts_to_a_non_blank_png(compstat_ctx: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    from PIL import Image

    pdf = write_report(compstat_ctx, tmp_path / "compstat.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    for page in pages[:1] + pages[2:4]:
        pixels = np.asarray(Image.open(page).convert("L"), dtype=float)
        ink = float(np.mean(pixels < 200))
        assert ink > 0.01, f"{page.name} looks blank ({ink:.3%} dark pixels)"
        assert pixels.std() > 10


def test_custom_report_by_category_area_and_frame(store: DuckDBStore, tmp_path: Path) -> None:
    frame = store.counts(["district"], None).sort_values("count", ascending=False)
    top = tuple(frame["district"].head(2))
    spec = ReportSpec(type="custom", categories=("property",), areas=top, start=pd.Timestamp("2022-11-01"),
                      end=pd.Timestamp("2022-12-15"), forecast_model=None)
    ctx = build_context(store, spec)
    assert ctx["period"] == "2022-11-01 to 2022-12-14"
    assert {r["label"] for r in ctx["by_area"]["rows"]} <= set(top)
    n = store.execute(
        "SELECT count(*) AS n FROM incidents WHERE category_group = 'property' AND district IN (?, ?) AND "
        "occurred_at >= '2022-11-01' AND occurred_at < '2022-12-15'", list(top))
    assert ctx["by_category"]["total"]["current"] == int(n["n"].iloc[0])
    assert ctx["forecast"] is None
    html = render_html(ctx)
    assert "By offence" in html and "Alerts in the period" in html


def test_bad_specs_are_input_errors() -> None:
    with pytest.raises(InputError):
        ReportSpec(type="weekly")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        ReportSpec(type="custom", start=pd.Timestamp("2024-02-01"), end=pd.Timestamp("2024-01-01"))
    with pytest.raises(InputError):
        ReportSpec(categories=("burgalry",)).filter()
    with pytest.raises(InputError):
        write_report({"type": "compstat"}, "report.docx")
