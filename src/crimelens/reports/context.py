"""What a report contains: :class:`ReportSpec` says which report, :func:`build_context` gathers it.

Two report types:

* ``compstat`` -- the weekly CompStat report for the Monday–Sunday week ending on or before
  ``as_of``: offences × (week, 28 days, year to date) against last year with exact tests, the
  same per area, the weekly trend of the last two years, the hot spot map of the last 28 days,
  the riskiest forecast cells for the coming week and the open alerts.
* ``custom`` -- any category, area and time frame: counts against the previous frame of the
  same length per category and per area, the weekly trend, the hot spot map of the frame, the
  forecast after it and the alerts raised in it.

Both end with the data-quality footer and the command that reproduces every figure.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from crimelens import __version__
from crimelens.alerts.panel import local_midnight
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter, utc
from crimelens.reports import sections

ReportType = Literal["compstat", "custom"]


@dataclass(frozen=True, kw_only=True)
class ReportSpec:
    """Which report to build.

    Parameters
    ----------
    type
        ``compstat`` or ``custom``.
    as_of
        CompStat report date (the week ending on or before it); default the last day with data.
    start, end
        Custom report frame, start inclusive, end exclusive; default the 28 days before the last day with data.
    categories, sources
        Filters (categories may be roll-ups or groups).
    area_level, areas
        Area breakdown column, and the areas to keep (all when empty).
    title
        Report title (a default names the type and period).
    hotspot_cell_m, forecast_model, forecast_cell_m, forecast_horizon, forecast_top
        Map and forecast parameters (``forecast_model=None`` leaves the forecast out).
    alerts
        Include open alerts (CompStat) or the frame's alerts (custom).
    """

    type: ReportType = "compstat"
    as_of: pd.Timestamp | None = None
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    area_level: str = "district"
    areas: tuple[str, ...] = ()
    title: str | None = None
    hotspot_cell_m: float = 250.0
    forecast_model: str | None = "retro_count"
    forecast_cell_m: float = 200.0
    forecast_horizon: str = "7d"
    forecast_top: int = 10
    alerts: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in ("compstat", "custom"):
            raise InputError(f"report type must be compstat or custom, got {self.type!r}")
        if self.start is not None and self.end is not None and utc(self.start) >= utc(self.end):
            raise InputError("the report's start must be before its end")

    def filter(self) -> IncidentFilter:
        """The incident filter of the report (without its time frame)."""
        areas = {self.area_level: self.areas} if self.areas else {}
        flt = IncidentFilter(categories=self.categories, sources=self.sources, areas=areas)
        flt.category_names()
        return flt

    def parameters(self) -> dict[str, Any]:
        """Every parameter that shaped the report."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, (), {}) and k != "extra"}
        return {k: (list(v) if isinstance(v, tuple) else str(v) if isinstance(v, pd.Timestamp) else v)
                for k, v in d.items()}


def _zone(store: Any, flt: IncidentFilter) -> str:
    finder = getattr(store, "timezone", None)
    return str(finder(flt.sources)) if callable(finder) else "UTC"


def _label(when: Any, tz: str) -> pd.Timestamp:
    """A local calendar day (naive midnight) from a date or an aware time."""
    ts = pd.Timestamp(when)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(tz).tz_localize(None)
    return ts.normalize()


def _span(store: Any, flt: IncidentFilter, tz: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last local day with incidents matching ``flt``."""
    days = store.counts(["day"], flt, tz=tz)
    if days.empty:
        raise InputError("no incidents match the report's filters")
    return _label(days["day"].min(), tz), _label(days["day"].max(), tz)


def _week_start_after(day: pd.Timestamp) -> pd.Timestamp:
    """The first Monday on or after ``day`` (so a trend starts with a complete week)."""
    return day + pd.Timedelta(days=(7 - day.weekday()) % 7)


def _alerts(store: Any, *, open_only: bool, start: pd.Timestamp | None = None,
            end: pd.Timestamp | None = None) -> list[dict[str, Any]]:
    from crimelens.notify.tables import read_alerts

    rows = []
    for a in read_alerts(store, open_only=open_only, start=start, end=end):
        d = a.to_dict()
        d["window"] = a.span().replace("–", " – ")
        rows.append(d)
    return rows


def build_context(store: Any, spec: ReportSpec, *, now: pd.Timestamp | None = None) -> dict[str, Any]:
    """Everything the report template needs (see the module docstring).

    Days are the local calendar days of the sources' time zone (as the store counts them).
    """
    flt = spec.filter()
    tz = _zone(store, flt)
    first_day, last_day = _span(store, flt, tz)
    generated = now if now is not None else pd.Timestamp.now(tz="UTC")
    ctx: dict[str, Any] = {"spec": spec, "type": spec.type, "generated": f"{generated:%Y-%m-%d %H:%M} UTC",
                           "version": __version__, "area_level": spec.area_level.replace("_", " "), "timezone": tz}
    day = pd.Timedelta(days=1)
    if spec.type == "compstat":
        as_of = _label(spec.as_of, tz) if spec.as_of is not None else last_day
        comp = sections.compstat_section(store, flt, as_of, tz)
        week_end = pd.Timestamp(comp["week_end"])
        end = week_end + day
        start = end - pd.Timedelta(days=28)
        ctx.update(
            title=spec.title or f"CompStat — week ending {week_end:%A %d %B %Y}",
            period=f"{week_end - pd.Timedelta(days=6):%Y-%m-%d} to {week_end:%Y-%m-%d}",
            compstat=comp,
            by_area=sections.change_table(store, flt, spec.area_level, end - pd.Timedelta(days=7), end, tz),
            alerts=_alerts(store, open_only=True) if spec.alerts else None,
        )
        trend_start = end - pd.Timedelta(days=728)
        trend_start -= pd.Timedelta(days=trend_start.weekday())
    else:
        end = _label(spec.end, tz) if spec.end is not None else last_day + day
        start = _label(spec.start, tz) if spec.start is not None else end - pd.Timedelta(days=28)
        cats = ", ".join(spec.categories) if spec.categories else "all crime"
        where = f"{spec.area_level} {', '.join(spec.areas)}" if spec.areas else "all areas"
        ctx.update(
            title=spec.title or f"Report — {cats}, {where}",
            period=f"{start:%Y-%m-%d} to {end - day:%Y-%m-%d}",
            by_category=sections.change_table(store, flt, "category", start, end, tz),
            by_area=sections.change_table(store, flt, spec.area_level, start, end, tz),
            alerts=_alerts(store, open_only=False, start=local_midnight(start, tz), end=local_midnight(end, tz))
            if spec.alerts else None,
        )
        trend_start = min(start, end - pd.Timedelta(days=364))
        trend_start -= pd.Timedelta(days=trend_start.weekday())
    trend_start = max(trend_start, _week_start_after(first_day))
    if trend_start >= end - pd.Timedelta(days=14):  # too little data for whole weeks
        trend_start = first_day
    ctx["map_period"] = f"{start:%Y-%m-%d} to {end - day:%Y-%m-%d}"
    quality = sections.quality_section(store, sections.between(flt, start, end, tz), spec.parameters(),
                                       f"{start:%Y-%m-%d} to {end - day:%Y-%m-%d} ({tz})")
    ctx["quality"] = quality
    ctx["trend"] = sections.trend_section(store, flt, trend_start, end, tz, quality["quality"])
    ctx["hotspots"] = sections.hotspot_section(store, flt, start, end, tz, quality["quality"],
                                               cell_m=spec.hotspot_cell_m)
    ctx["forecast"] = (sections.forecast_section(store, flt, end, tz, model=spec.forecast_model,
                                                 cell_m=spec.forecast_cell_m, horizon=spec.forecast_horizon,
                                                 top=spec.forecast_top) if spec.forecast_model else None)
    population = spec.extra.get("population")  # a group,population table: the stops section
    ctx["disproportionality"] = (sections.disproportionality_section(store, flt, population, start, end, tz)
                                 if population is not None else None)
    ctx["commands"] = [c for c in (
        ctx.get("compstat", {}).get("cli"),
        ctx["trend"].get("cli"), ctx["hotspots"].get("cli"),
        (ctx["forecast"] or {}).get("cli"),
        "crimelens alerts list --status open" if spec.type == "compstat" and spec.alerts else None,
    ) if c]
    ctx["parameters"] = spec.parameters()
    return ctx
