"""The sections of a report, each computed from store counts by the same analysis calls as the CLI.

Every section returns plain data for the templates plus the ``crimelens`` command that
reproduces it, so every figure in a report can be regenerated from the command line:

* :func:`compstat_section` -- :func:`crimelens.analysis.compstat` (``crimelens compstat``);
* :func:`change_table` -- counts in a time frame against the previous frame of the same length,
  with the exact conditional test of :func:`crimelens.analysis.compstat.change_test`;
* :func:`trend_section` -- :func:`crimelens.analysis.time_series` (``crimelens trends``);
* :func:`hotspot_section` -- Getis-Ord Gi* (``crimelens hotspots --method gistar``);
* :func:`forecast_section` -- the riskiest cells of a forecaster (``crimelens forecast --top``);
* :func:`quality_section` -- the data-quality footer;
* :func:`disproportionality_section` -- stops (or arrests) by group against a population table.

Charts are PNGs written by :func:`crimelens.analysis.save` and embedded as data URIs, so an HTML
report is a single file.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from crimelens.alerts.panel import local_midnight
from crimelens.exceptions import CrimelensError, InputError
from crimelens.filters import IncidentFilter

WINDOW_NAMES = {"7d": "Week", "28d": "28 days", "ytd": "Year to date"}


def _day(ts: pd.Timestamp) -> str:
    return f"{ts:%Y-%m-%d}"


def between(flt: IncidentFilter, start: pd.Timestamp, end: pd.Timestamp, tz: str, **more: Any) -> IncidentFilter:
    """``flt`` restricted to the local days ``[start, end)`` (naive labels) of zone ``tz``."""
    return dataclasses.replace(flt, start=local_midnight(start, tz).to_pydatetime(),
                               end=local_midnight(end, tz).to_pydatetime(), **more)


def filter_args(flt: IncidentFilter) -> str:
    """The CLI options that reproduce ``flt``'s categories and sources."""
    parts = [f"--category {c}" for c in flt.categories] + [f"--source {s}" for s in flt.sources]
    return (" " + " ".join(parts)) if parts else ""


def png_data_uri(result: Any, *, title: str | None = None, quality: Any = None) -> str:
    """``result`` drawn by :func:`crimelens.analysis.save` as a ``data:image/png`` URI."""
    from crimelens.analysis import save

    with tempfile.TemporaryDirectory() as tmp:
        path = save(result, Path(tmp) / "figure.png", title=title, quality=quality)
        data = path.read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _fmt_pct(v: float) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.0f}%"


def _sig(p: float, diff: float, alpha: float = 0.05) -> str:
    if p > alpha or diff == 0:
        return ""
    return "up" if diff > 0 else "down"


def compstat_section(store: Any, flt: IncidentFilter, as_of: pd.Timestamp, tz: str, *,
                     by: str | None = None) -> dict[str, Any]:
    """CompStat rows (offences; per ``by`` area when given) for the week ending on or before the local day ``as_of``."""
    from crimelens import analysis as an

    keys = ["category"] if by is None else [by, "category"]
    naive = as_of.tz_localize(None) if as_of.tzinfo else as_of
    wins = an.compstat_windows(naive)
    first = min(w.ly_start for w in wins.values())  # the week may end in the year before as_of
    window = between(flt, first, wins["7d"].end + pd.Timedelta(days=1), tz)
    counts = store.counts(["day", *keys, "time_precision"], window, tz=tz)
    if counts.empty:
        raise InputError("no incidents in the CompStat period")
    res = an.compstat(counts, as_of=naive, by=keys)
    rows = []
    for key, r in res.table.iterrows():
        label = " / ".join(map(str, key)) if isinstance(key, tuple) else str(key)
        cells = []
        for w in ("7d", "28d", "ytd"):
            diff = float(r[f"{w}_diff"])
            p = float(r[f"{w}_p"])
            cells.append({"current": int(r[f"{w}_current"]), "last_year": int(r[f"{w}_last_year"]),
                          "diff": int(diff), "pct": _fmt_pct(float(r[f"{w}_pct_change"])),
                          "z": float(r[f"{w}_z"]), "p": p, "sig": _sig(p, diff)})
        rows.append({"label": label.replace("_", " "), "total": label.endswith("Total"), "cells": cells})
    windows = [{"name": WINDOW_NAMES[k], "from": _day(w.start), "to": _day(w.end), "ly_from": _day(w.ly_start),
                "ly_to": _day(w.ly_end)} for k, w in res.windows.items()]
    end = res.windows["7d"].end
    cli = f"crimelens compstat --as-of {_day(end)}" + (f" --by {by}" if by else "") + filter_args(flt)
    return {"rows": rows, "windows": windows, "parameters": res.parameters, "week_end": end, "cli": cli}


def change_table(store: Any, flt: IncidentFilter, key: str, start: pd.Timestamp, end: pd.Timestamp, tz: str,
                 *, top: int = 25) -> dict[str, Any]:
    """Counts per ``key`` in the local days ``[start, end)`` against the previous period of the same length."""
    from crimelens.analysis.compstat import change_test

    span = end - start
    days = max(int(span / pd.Timedelta(days=1)), 1)
    prev_start = start - span
    counts = store.counts(["day", key], between(flt, prev_start, end, tz), tz=tz)
    if counts.empty:
        return {"rows": [], "key": key, "cli": ""}
    day = pd.to_datetime(counts["day"])
    if getattr(day.dt, "tz", None) is not None:
        day = day.dt.tz_convert(tz).dt.tz_localize(None)
    now = counts["count"].where(day >= start, 0).groupby(counts[key].fillna("(none)")).sum()
    before = counts["count"].where(day < start, 0).groupby(counts[key].fillna("(none)")).sum()
    table = pd.DataFrame({"current": now, "previous": before}).fillna(0)
    table = table.sort_values("current", ascending=False)
    rows = []
    for name, r in table.head(top).iterrows():
        diff = float(r["current"] - r["previous"])
        z, p = change_test(float(r["current"]), float(r["previous"]), days, days)
        pct = 100 * diff / r["previous"] if r["previous"] > 0 else float("nan")
        rows.append({"label": str(name).replace("_", " "), "current": int(r["current"]),
                     "previous": int(r["previous"]), "diff": int(diff), "pct": _fmt_pct(pct), "z": z, "p": p,
                     "sig": _sig(p, diff)})
    total_now, total_before = float(table["current"].sum()), float(table["previous"].sum())
    total_z, total_p = change_test(total_now, total_before, days, days)
    return {"rows": rows, "key": key, "omitted": max(len(table) - top, 0),
            "total": {"current": int(total_now), "previous": int(total_before), "diff": int(total_now - total_before),
                      "pct": _fmt_pct(100 * (total_now - total_before) / total_before if total_before else math.nan),
                      "z": total_z, "p": total_p, "sig": _sig(total_p, total_now - total_before)},
            "previous_from": _day(prev_start), "previous_to": _day(start - pd.Timedelta(days=1))}


def trend_section(store: Any, flt: IncidentFilter, start: pd.Timestamp, end: pd.Timestamp, tz: str,
                  quality: Any, *, period: str = "week") -> dict[str, Any]:
    """Incidents per week over the local days ``[start, end)``, with an STL trend when two seasons are there."""
    from crimelens import analysis as an

    counts = store.counts(["day", "time_precision"], between(flt, start, end, tz), tz=tz)
    last = end - pd.Timedelta(days=1)
    try:
        result = an.time_series(counts, period, start=start, end=last, stl=True)  # type: ignore[arg-type]
        stl = True
    except InputError:
        result = an.time_series(counts, period, start=start, end=last)  # type: ignore[arg-type]
        stl = False
    cli = (f"crimelens trends --period {period}{' --stl' if stl else ''} --from {_day(start)} --to {_day(end)}"
           + filter_args(flt) + " --out trend.png")
    return {"image": png_data_uri(result, title=f"Incidents per {period}", quality=quality), "cli": cli,
            "summary": result.summary()}


def hotspot_section(store: Any, flt: IncidentFilter, start: pd.Timestamp, end: pd.Timestamp, tz: str,
                    quality: Any, *, cell_m: float = 250.0) -> dict[str, Any]:
    """Getis-Ord Gi* hot spots of the local days ``[start, end)`` on square cells (FDR, analytical)."""
    from crimelens import analysis as an

    window = between(flt, start, end, tz, located=True)
    crs_found = store.counts(["crs"], window)["crs"].dropna().unique()
    if len(crs_found) != 1:
        return {"note": "no located incidents in the period" if len(crs_found) == 0
                else "the selection mixes coordinate systems; pick one source"}
    crs = str(crs_found[0])
    try:
        units = an.grid_counts(store.counts([f"cell:{cell_m:g}"], window), cell_m, crs)
        result = an.GetisOrd().fit(units).result_
    except (CrimelensError, ValueError) as exc:
        return {"note": f"hot spots not computed: {exc}"}
    summary = result.summary()
    cli = (f"crimelens hotspots --method gistar --cell {cell_m:g} --from {_day(start)} --to {_day(end)}"
           + filter_args(flt) + " --out hotspots.png")
    return {"image": png_data_uri(result, title="Hot spots (Getis-Ord Gi*)", quality=quality), "cli": cli,
            "classes": summary.get("classes", {}), "crs": crs}


def forecast_section(store: Any, flt: IncidentFilter, until: pd.Timestamp, tz: str, *, model: str = "retro_count",
                     cell_m: float = 200.0, horizon: str = "7d", top: int = 10) -> dict[str, Any]:
    """The ``top`` riskiest cells for ``[until, until + horizon)`` (``until`` a local day)."""
    from crimelens.forecast import make

    window = between(flt, until - pd.Timedelta(days=400), until, tz, located=True)
    origin = local_midnight(until, tz)
    frame = store.incidents(window, columns=["occurred_at", "x", "y", "category", "crs"])
    frame = frame[frame["x"].notna() & frame["y"].notna()]
    if frame.empty:
        return {"note": "no located incidents to forecast from"}
    try:
        est = make(model, cell_size=cell_m, horizon=horizon)
        est.fit(frame, until=origin)
        surface = est.predict(horizon=horizon)
    except (CrimelensError, ValueError) as exc:
        return {"note": f"forecast not computed: {exc}"}
    cells = surface.to_frame().head(top)
    rows = [{"rank": int(r["rank"]), "cell_id": int(r["cell_id"]), "lat": float(r["lat"]), "lon": float(r["lon"]),
             "expected": float(r["expected"]), "score": float(r["score"])} for _, r in cells.iterrows()]
    cli = (f"crimelens forecast --model {model} --cell {cell_m:g} --horizon {horizon} --at {_day(until)} "
           f"--top {top}{filter_args(flt)} --out forecast.csv")
    return {"rows": rows, "model": model, "cell_m": cell_m, "from": _day(surface.start),
            "to": _day(surface.end - pd.Timedelta(days=1)), "cli": cli}


def quality_section(store: Any, flt: IncidentFilter, parameters: dict[str, Any], period: str) -> dict[str, Any]:
    """Sources, extract date, share geocoded, CRS, incidents of ``flt`` over ``period``; the report's parameters."""
    from crimelens.analysis import DataQuality

    by = store.counts(["source", "location_precision", "crs"], flt)
    total = int(by["count"].sum()) if len(by) else 0
    located = int(by.loc[by["location_precision"] != "none", "count"].sum()) if len(by) else 0
    loads = store.counts(["ingested_at"], flt)
    extracted = str(pd.Timestamp(loads["ingested_at"].max()).date()) if len(loads) else None
    crs = sorted(str(c) for c in by["crs"].dropna().unique()) if len(by) else []
    dq = DataQuality(sources=tuple(sorted(by["source"].unique())) if len(by) else (), extracted_at=extracted,
                     share_geocoded=located / total if total else None, crs=", ".join(crs) or None,
                     incidents=total, period=period,
                     notes=(f"Categories: {', '.join(flt.categories) if flt.categories else 'all crime'}",))
    return {"quality": dq, "footer": dq.footer(parameters), "incidents": total,
            "share_geocoded": dq.share_geocoded, "crs": dq.crs, "sources": list(dq.sources), "extracted": extracted}


def disproportionality_section(store: Any, flt: IncidentFilter, population: pd.DataFrame, start: pd.Timestamp,
                               end: pd.Timestamp, tz: str, *, group_column: str = "subject_ethnicity_officer",
                               kinds: tuple[str, ...] = ("stop",)) -> dict[str, Any]:
    """Stop rates per 1,000 residents, rate ratios and hit rates by group over ``[start, end)``.

    Returns ``{"note": ...}`` instead of rows when the frame holds no such records.
    """
    from crimelens.governance.disproportionality import disproportionality

    window = between(flt, start, end, tz, kinds=kinds, categories=(), include_non_crime=True)
    records = store.incidents(window, columns=[group_column, "outcome", "search_hit"])
    if records.empty:
        return {"note": f"No {' or '.join(kinds)} records in the period."}
    res = disproportionality(records, population, group_column=group_column).to_dict()
    cli = (f"crimelens audit stops --population POPULATION.csv --from {_day(start)} --to {_day(end)}"
           + "".join(f" --kind {k}" for k in kinds) + "".join(f" --source {s}" for s in flt.sources))
    return {**res, "kinds": list(kinds), "cli": cli}
