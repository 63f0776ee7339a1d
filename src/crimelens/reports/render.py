"""Render reports: Jinja2 templates to HTML, WeasyPrint from HTML to PDF.

Templates live in ``crimelens/reports/templates`` (autoescaped; numbers are formatted by
filters here so the templates stay declarative). WeasyPrint is imported only when a PDF is asked
for; it needs the Pango libraries (Debian: ``libpango-1.0-0 libpangoft2-1.0-0``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from crimelens.exceptions import InputError, require_extra

TEMPLATES = Path(__file__).with_name("templates")
SUFFIXES = (".html", ".pdf")


def _p(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(v):
        return ""
    return "<0.001" if v < 0.001 else f"{v:.3f}"


def _num(value: Any, digits: int = 0) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(v):
        return ""
    return f"{v:,.{digits}f}"


def environment() -> Any:
    """The Jinja2 environment of the report templates."""
    require_extra("jinja2", "reports")
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(
        ["html", "j2"]), undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pvalue"] = _p
    env.filters["num"] = _num
    return env


def render_html(context: dict[str, Any]) -> str:
    """The report as one self-contained HTML document."""
    name = f"{context['type']}.html.j2"
    css = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return str(environment().get_template(name).render(css=css, **context))


def html_to_pdf(html: str) -> bytes:
    """PDF bytes from HTML (WeasyPrint)."""
    require_extra("weasyprint", "reports")
    import weasyprint

    return bytes(weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf())


def write_report(context: dict[str, Any], out: str | Path) -> Path:
    """Write the report to ``out``: ``.html`` or ``.pdf`` by suffix."""
    path = Path(out)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"report output must end in .html or .pdf, got {path.name!r}")
    html = render_html(context)
    if suffix == ".html":
        path.write_text(html, encoding="utf-8")
    else:
        path.write_bytes(html_to_pdf(html))
    return path
