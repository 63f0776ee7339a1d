"""Reports: weekly CompStat and custom reports as HTML and PDF (Jinja2 + WeasyPrint), and their
schedule (APScheduler). Sections reuse :mod:`crimelens.analysis` and :mod:`crimelens.forecast`."""

from crimelens.reports.context import ReportSpec, build_context
from crimelens.reports.render import html_to_pdf, render_html, write_report

__all__ = ["ReportSpec", "build_context", "html_to_pdf", "render_html", "write_report"]
