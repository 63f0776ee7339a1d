"""``crimelens publish``: a privacy-safe public release (masked points, or suppressed counts).

A thin adapter over :mod:`crimelens.governance.release`: read only the columns a release needs
(counts are pushed down to the store), protect, write the file and the protection report.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    FromOpt,
    JsonOpt,
    SourceOpt,
    ToOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    make_filter,
)
from crimelens.exceptions import InputError

if TYPE_CHECKING:
    from crimelens.governance.mapcounts import GridMethod
    from crimelens.governance.release import MaskMethod

KINDS = ("points", "areas", "grid")
METHODS = {"points": ("donut", "snap"), "grid": ("merge", "suppress"), "areas": ("suppress",)}
PERIODS = {"points": ("day", "week", "month"), "areas": ("week", "month"), "grid": ()}
POINT_COLUMNS = ["occurred_at", "category", "category_group", "x", "y", "crs"]


def _check(kind: str, method: str | None, period: str | None, out: Path, k: int) -> tuple[str, str | None]:
    from crimelens.governance.release import FORMATS

    if kind not in KINDS:
        fail(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    chosen = method or METHODS[kind][0]
    if chosen not in METHODS[kind]:
        fail(f"--method for --kind {kind} must be one of {', '.join(METHODS[kind])}, got {chosen!r}")
    when = period or {"points": "week", "areas": "month", "grid": None}[kind]
    if when is not None and PERIODS[kind] and when not in PERIODS[kind]:
        fail(f"--period for --kind {kind} must be one of {', '.join(PERIODS[kind])}, got {when!r}")
    if out.suffix.lower() not in FORMATS:
        fail(f"unsupported output {out.name!r}: use {', '.join(FORMATS)}")
    if kind == "areas" and out.suffix.lower() == ".geojson":
        fail("an area table has no geometry: use --out FILE.csv or FILE.parquet")
    if k < 1:
        fail("--k must be at least 1")
    return chosen, when


def _build(store: Any, kind: str, method: str, period: str | None, area: str, flt: Any, opts: dict[str, Any]) -> Any:
    from crimelens.governance import release as rel
    from crimelens.sources.points import read_reference

    tz = store.timezone(list(flt.sources))
    if kind == "areas":
        rel.check_area(area)
        counts = store.counts([area, period], flt, tz=tz)
        if counts[area].notna().sum() == 0 and len(counts):
            raise InputError(f"area column {area!r} is empty for this selection; try another --area")
        return rel.release_areas(counts, area=area, period=str(period), k=opts["k"])
    located = dataclasses.replace(flt, located=True)
    if kind == "grid":
        cell = float(opts["cell"])
        crs = sorted(str(c) for c in store.counts(["crs"], located)["crs"].dropna().unique())
        if len(crs) != 1:
            raise InputError("no located incidents match the filters" if not crs else
                             f"the selection mixes CRSs ({', '.join(crs)}): pick one source with --source")
        cells = store.counts([f"cell:{cell:g}"], located)
        return rel.release_grid(cells, cell_size=cell, crs=crs[0], k=opts["k"], method=cast("GridMethod", method))
    incidents = store.incidents(located, columns=POINT_COLUMNS)
    reference = read_reference(opts["reference"]) if opts["reference"] is not None else None
    return rel.release_points(
        incidents, method=cast("MaskMethod", method), k=opts["k"], period=str(period), level=opts["level"],
        seed=opts["seed"], tz=tz, reference=reference, reference_wgs84=True,
        min_radius=opts["min_radius"], max_radius=opts["max_radius"], cell_size=opts["cell"] or 100.0,
    )


def publish(
    out: Annotated[Path, typer.Option("--out", help="Release file: .csv, .geojson or .parquet.")],
    kind: Annotated[str, typer.Option(help="points (masked), areas (area × period table) or grid (map cells).")
                    ] = "points",
    method: Annotated[str | None, typer.Option(
        help="points: donut (default) or snap; grid: merge (default) or suppress.")] = None,
    k: Annotated[int, typer.Option("--k", help="Smallest anonymity set / publishable count.")] = 10,
    area: Annotated[str, typer.Option(help="Area column for --kind areas (district, beat, ward, ...).")
                    ] = "district",
    period: Annotated[str | None, typer.Option(
        help="areas: week or month (default); points: date truncated to day, week (default) or month.")] = None,
    level: Annotated[str, typer.Option(help="Points: publish category or only category_group.")] = "category",
    cell: Annotated[float | None, typer.Option(
        help="Metres: finest grid cell (grid, default 250) or anchor cell (snap, default 100).")] = None,
    min_radius: Annotated[float, typer.Option(help="Donut: smallest displacement in metres.")] = 0.0,
    max_radius: Annotated[float | None, typer.Option(
        help="Largest displacement in metres; points that need more are left out.")] = None,
    seed: Annotated[int | None, typer.Option(
        help="Donut key for reproducible masks; keep it secret (never written to the report).")] = None,
    reference: Annotated[Path | None, typer.Option(
        help="Points: reference locations to count (address points; .csv/.parquet with lon/lat, or .geojson) "
             "(default: the incident locations).")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write the protection report (JSON).")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Publish a privacy-safe release: masked points or small-cell-suppressed counts."""
    chosen, when = _check(kind, method, period, out, k)
    if level not in ("category", "category_group"):
        fail(f"--level must be category or category_group, got {level!r}")
    flt = make_filter(start, end, category, source)
    opts = {"k": k, "level": level, "seed": seed, "min_radius": min_radius, "max_radius": max_radius,
            "reference": reference, "cell": cell if cell is not None else (250.0 if kind == "grid" else None)}
    with errors_to_exit():
        from crimelens.store import connect

        store = connect(db_url(db), read_only=True)
        try:
            release = _build(store, kind, chosen, when, area, flt, opts)
        finally:
            store.close()
        written = release.write(out)
        if report is not None:
            report.write_text(json.dumps(release.report, indent=2, default=str) + "\n", encoding="utf-8")
    payload = {"out": str(written), "report": str(report) if report else None, "rows": len(release.data),
               **release.report}
    human = f"wrote {len(release.data):,} rows ({kind}, {chosen}, k={k}) to {written}"
    if kind == "points":
        v = release.report["verification"]
        human += (f"; min k-anonymity {v['min_k_anonymity']}, median displacement "
                  f"{v['displacement_m']['median']:g} m" if chosen == "donut" else
                  f"; smallest catchment {release.report.get('min_anchor_catchment')}")
    else:
        sup = release.report["suppression"]
        human += (f"; {sup['primary_suppressed']} small cells suppressed "
                  f"(+{sup['complementary_suppressed']} complementary)")
    if not release.report.get("guarantee_met", False):
        human += " — WARNING: guarantee not met, see the report"
    emit(payload, as_json, human)


def register(app: typer.Typer) -> None:
    """Add ``publish`` to the application."""
    app.command("publish")(publish)
