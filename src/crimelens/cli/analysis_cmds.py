"""``crimelens trends``, ``compstat``, ``hotspots`` and ``near-repeat``.

Thin adapters: parse options, ask the store for counts (a ``GROUP BY``; only the Knox test reads
located incidents, because it needs pairs), call :mod:`crimelens.analysis`, write the output.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import pandas as pd
import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    EngineOpt,
    FromOpt,
    JsonOpt,
    KindOpt,
    SourceOpt,
    SparkConfOpt,
    SparkMasterOpt,
    ToOpt,
    emit,
    errors_to_exit,
    fail,
    make_filter,
    parse_date,
)
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter

OutOpt = Annotated[Path | None, typer.Option("--out", help="Output file: .png, .geojson, .gpkg, .csv, .parquet, .json")]
METHODS = ("kde", "gistar", "lisa", "dbscan", "hdbscan", "kmeans", "emerging")
DEFAULT_CELL = {"kde": 50, "gistar": 250, "lisa": 250, "emerging": 500, "dbscan": 10, "hdbscan": 10, "kmeans": 10}


@contextmanager
def _progress(label: str, quiet: bool) -> Iterator[None]:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn(label),
        TimeElapsedColumn(),
        transient=True,
        console=console,
        disable=quiet or not console.is_terminal,
    ) as bar:
        bar.add_task(label, total=None)
        yield


def _open(db: str | None, engine: str = "duckdb", spark_master: str | None = None,
          spark_conf: list[str] | None = None) -> Any:
    from crimelens.cli.common import open_store

    return open_store(db, read_only=True, engine=engine, spark_master=spark_master, spark_conf=spark_conf)


def _crs(store: Any, flt: IncidentFilter) -> str:
    found = store.counts(["crs"], dataclasses.replace(flt, located=True))
    crs = sorted(str(c) for c in found["crs"].dropna().unique())
    if not crs:
        raise InputError("no located incidents match the filters")
    if len(crs) > 1:
        raise InputError(f"the selection mixes CRSs ({', '.join(crs)}): pick one source with --source")
    return crs[0]


def _quality(store: Any, flt: IncidentFilter, crs: str | None, notes: tuple[str, ...] = ()) -> Any:
    from crimelens.analysis import DataQuality

    by = store.counts(["source", "location_precision"], flt)
    total = int(by["count"].sum())
    located = int(by.loc[by["location_precision"] != "none", "count"].sum())
    info = store.info()
    loads = store.counts(["ingested_at"], flt)
    extracted = str(pd.Timestamp(loads["ingested_at"].max()).date()) if len(loads) else None
    span = None
    if flt.start or flt.end:
        span = f"{flt.start.date() if flt.start else '…'} to {flt.end.date() if flt.end else '…'}"
    elif info.get("first_occurred_at"):
        span = f"{str(info['first_occurred_at'])[:10]} to {str(info['last_occurred_at'])[:10]}"
    cats = ", ".join(flt.categories) if flt.categories else "all crime"
    return DataQuality(
        sources=tuple(sorted(by["source"].unique())),
        extracted_at=extracted,
        share_geocoded=located / total if total else None,
        crs=crs,
        incidents=total,
        period=span,
        notes=(f"Categories: {cats}", *notes),
    )


def _check_out(out: Path | None) -> None:
    from crimelens.analysis.export import SUFFIXES

    if out is not None and out.suffix.lower() not in SUFFIXES:
        fail(f"unsupported output {out.name!r}: use {', '.join(SUFFIXES)}")


def _write(result: Any, out: Path | None, quality: Any, title: str | None) -> str | None:
    from crimelens.analysis import save

    if out is None:
        return None
    return str(save(result, out, title=title, quality=quality))


def _units(
    store: Any, flt: IncidentFilter, cell: str, crs: str, polygons: Path | None, id_field: str | None, study_area: str
) -> Any:
    from crimelens.analysis import grid_counts, h3_counts, polygon_counts

    if polygons is not None:
        import geopandas as gpd

        return polygon_counts(
            gpd.read_file(polygons), store.counts(["cell:10"], flt), crs, id_field=id_field, cell_size=10.0
        )
    if cell.startswith("h3:"):
        res = int(cell[3:])
        return h3_counts(store.counts([f"h3_{res}"], flt), res, crs)
    size = float(cell)
    if study_area not in ("extent", "hull"):
        raise InputError("--study-area must be extent or hull")
    area = cast(Literal["extent", "hull"], study_area)
    return grid_counts(store.counts([f"cell:{size:g}"], flt), size, crs, study_area=area)


def hotspots(
    method: Annotated[str, typer.Option(help="kde, gistar, lisa, dbscan, hdbscan, kmeans or emerging.")] = "gistar",
    cell: Annotated[str | None, typer.Option(help="Cell size in metres, or h3:RES (7, 8, 9).")] = None,
    out: OutOpt = None,
    band: Annotated[float | None, typer.Option(help="Distance band in metres (Gi*, LISA, emerging).")] = None,
    weights: Annotated[str, typer.Option(help="Gi* weights: distance or knn.")] = "distance",
    k: Annotated[int, typer.Option(help="Neighbours for knn weights.")] = 8,
    permutations: Annotated[int, typer.Option(help="0 = analytical p-values, else permutations.")] = 0,
    no_fdr: Annotated[bool, typer.Option("--no-fdr", help="Do not correct for the false discovery rate.")] = False,
    kernel: Annotated[str, typer.Option(help="KDE kernel: quartic or gaussian.")] = "quartic",
    bandwidth: Annotated[str | None, typer.Option(help="KDE bandwidth in metres, or arcgis / scott.")] = None,
    eps: Annotated[float, typer.Option(help="DBSCAN radius in metres.")] = 200.0,
    min_samples: Annotated[
        int | None, typer.Option(help="DBSCAN incidents within eps for a core point [default: auto].")
    ] = None,
    min_cluster_size: Annotated[int, typer.Option(help="HDBSCAN smallest cluster.")] = 25,
    clusters: Annotated[int, typer.Option(help="K-Means number of clusters.")] = 8,
    period: Annotated[str, typer.Option(help="Emerging: time step (week or month).")] = "month",
    polygons: Annotated[Path | None, typer.Option(help="GeoJSON polygons as units (Gi*, LISA).")] = None,
    id_field: Annotated[str | None, typer.Option(help="Polygon property naming each unit.")] = None,
    study_area: Annotated[
        str, typer.Option(help="Grid cells kept: hull (of the occupied cells) or extent (the rectangle).")
    ] = "hull",
    title: Annotated[str | None, typer.Option(help="Map title.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed (permutations, K-Means).")] = 0,
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    kind: KindOpt = None,
    db: DbOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hot spots: KDE surface, Gi* or Local Moran cells, point clusters, emerging hot spots."""

    _check_out(out)
    if method not in METHODS:
        fail(f"--method must be one of {', '.join(METHODS)}")
    flt = dataclasses.replace(make_filter(start, end, category, source, kind), located=True)
    cell_text = cell or str(DEFAULT_CELL[method])
    with errors_to_exit(), _progress(f"{method} hot spots", as_json):
        store = _open(db, engine, spark_master, spark_conf)
        try:
            crs = _crs(store, flt)
            quality = _quality(store, flt, crs)
            opts = _HotspotOptions(
                band=band,
                weights=weights,
                k=k,
                permutations=permutations,
                fdr=not no_fdr,
                kernel=kernel,
                bandwidth=bandwidth,
                eps=eps,
                min_samples=min_samples,
                min_cluster_size=min_cluster_size,
                clusters=clusters,
                period=period,
                study_area=study_area,
                seed=seed,
            )
            if method in ("gistar", "lisa"):
                units = _units(store, flt, cell_text, crs, polygons, id_field, study_area)
                result = _local_statistic(method, units, opts)
            else:
                result = _grid_method(method, store, flt, crs, _grid_size(cell_text), opts)
            written = _write(result, out, quality, title)
        finally:
            store.close()
    summary = {**result.summary(), "output": written}
    emit(summary, as_json, None if as_json else _human_hotspots(summary))


@dataclasses.dataclass(frozen=True)
class _HotspotOptions:
    band: float | None
    weights: str
    k: int
    permutations: int
    fdr: bool
    kernel: str
    bandwidth: str | None
    eps: float
    min_samples: int | None
    min_cluster_size: int
    clusters: int
    period: str
    study_area: str
    seed: int

    @property
    def inference(self) -> Literal["analytical", "permutation"]:
        return "permutation" if self.permutations > 0 else "analytical"


def _local_statistic(method: str, units: Any, o: _HotspotOptions) -> Any:
    from crimelens.analysis import GetisOrd, LocalMoran

    perms = o.permutations or 999
    if method == "gistar":
        if o.weights not in ("distance", "knn"):
            raise InputError("--weights must be distance or knn")
        return (
            GetisOrd(
                weights=cast(Literal["distance", "knn"], o.weights),
                distance_band=o.band,
                k=o.k,
                inference=o.inference,
                n_permutations=perms,
                fdr=o.fdr,
                random_state=o.seed,
            )
            .fit(units)
            .result_
        )
    return (
        LocalMoran(
            weights="distance" if o.band else "queen",
            distance_band=o.band,
            k=o.k,
            inference=o.inference,
            n_permutations=perms,
            fdr=o.fdr,
            random_state=o.seed,
        )
        .fit(units)
        .result_
    )


def _grid_method(method: str, store: Any, flt: IncidentFilter, crs: str, size: float, o: _HotspotOptions) -> Any:
    from crimelens import analysis as an

    if o.study_area not in ("extent", "hull"):
        raise InputError("--study-area must be extent or hull")
    area = cast(Literal["extent", "hull"], o.study_area)
    if method == "emerging":
        if o.period not in ("week", "month"):
            raise InputError("--period must be week or month")
        period = cast(Literal["week", "month"], o.period)
        cube = an.space_time_cube(
            store.counts([f"cell:{size:g}", period], flt), size, crs, period=period, study_area=area
        )
        return an.EmergingHotSpots(distance_band=o.band, fdr=o.fdr).fit(cube).result_
    units = an.grid_counts(store.counts([f"cell:{size:g}"], flt), size, crs, study_area=area)
    if method == "kde":
        if o.kernel not in ("quartic", "gaussian"):
            raise InputError("--kernel must be quartic or gaussian")
        bw: float | str | None = float(o.bandwidth) if o.bandwidth and o.bandwidth[0].isdigit() else o.bandwidth
        return an.KernelDensity(kernel=cast(Literal["quartic", "gaussian"], o.kernel), bandwidth=bw).fit(units).result_
    return (
        an.PointClusters(
            method=cast(Literal["dbscan", "hdbscan", "kmeans"], method),
            eps=o.eps,
            min_samples=o.min_samples,
            min_cluster_size=o.min_cluster_size,
            n_clusters=o.clusters,
            random_state=o.seed,
        )
        .fit(units)
        .result_
    )


def _grid_size(cell: str) -> float:
    if cell.startswith("h3:"):
        raise InputError("this method needs square cells: give --cell in metres")
    return float(cell)


def _human_hotspots(s: dict[str, Any]) -> str:
    lines = [
        f"{s['method']}: "
        + ", ".join(
            f"{k} {v}" for k, v in s.items() if k in ("units", "n_units", "incidents", "clusters", "clustered_share")
        )
    ]
    for name, n in s.get("classes", {}).items():
        lines.append(f"  {name:<28}{n:>8,}")
    params = s.get("parameters", {})
    lines.append("  parameters: " + ", ".join(f"{k}={v}" for k, v in params.items()))
    if s.get("output"):
        lines.append(f"  written: {s['output']}")
    return "\n".join(lines)


def trends(
    period: Annotated[str, typer.Option(help="day, week or month.")] = "week",
    chart: Annotated[str, typer.Option(help="series, hour-weekday or month-year.")] = "series",
    stl: Annotated[bool, typer.Option("--stl", help="Add an STL seasonal-trend decomposition.")] = False,
    out: OutOpt = None,
    title: Annotated[str | None, typer.Option(help="Chart title.")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    kind: KindOpt = None,
    db: DbOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts over time (zero-filled), STL trend, hour × weekday or month × year tables."""
    from crimelens import analysis as an

    _check_out(out)
    flt = make_filter(start, end, category, source, kind)
    with errors_to_exit():
        store = _open(db, engine, spark_master, spark_conf)
        try:
            quality = _quality(store, flt, None)
            result: Any
            if chart == "series":
                if period not in ("day", "week", "month"):
                    raise InputError("--period must be day, week or month")
                last = flt.end - pd.Timedelta(days=1) if flt.end else None
                result = an.time_series(
                    store.counts(["day", "time_precision"], flt),
                    cast(Literal["day", "week", "month"], period),
                    start=flt.start,
                    end=last,
                    stl=stl,
                )
            elif chart == "hour-weekday":
                result = an.hour_weekday(store.counts(["hour", "weekday", "time_precision"], flt))
            elif chart == "month-year":
                result = an.month_year(store.counts(["month", "time_precision"], flt))
            else:
                raise InputError("--chart must be series, hour-weekday or month-year")
            written = _write(result, out, quality, title)
        finally:
            store.close()
    summary = {**result.summary(), "output": written}
    human = result.to_frame().tail(12).to_string(index=False) if chart == "series" else result.table.to_string()
    emit(summary, as_json, human + (f"\nwritten: {written}" if written else ""))


def compstat(
    as_of: Annotated[str | None, typer.Option("--as-of", help="Report date [default: last day in the data].")] = None,
    by: Annotated[str | None, typer.Option(help="Also split by an area column (district, beat...).")] = None,
    out: OutOpt = None,
    title: Annotated[str | None, typer.Option(help="Table title.")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    kind: KindOpt = None,
    db: DbOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """CompStat: week, 28 days and year to date against the same period last year, per offence."""
    from crimelens import analysis as an

    _check_out(out)
    flt = make_filter(start, end, category, source, kind)
    when = parse_date(as_of, "--as-of")
    keys = ["category"] if by is None else [by, "category"]
    with errors_to_exit():
        store = _open(db, engine, spark_master, spark_conf)
        try:
            if when is None:
                days = store.counts(["day"], flt)
                if days.empty:
                    raise InputError("no incidents match the filters")
                when = pd.Timestamp(days["day"].max()).to_pydatetime()
            assert when is not None
            window = dataclasses.replace(
                flt,
                start=pd.Timestamp(when.year - 1, 1, 1).to_pydatetime(),
                end=(pd.Timestamp(when) + pd.Timedelta(days=1)).to_pydatetime(),
            )
            result = an.compstat(store.counts(["day", *keys, "time_precision"], window), as_of=when, by=keys)
            written = _write(result, out, _quality(store, window, None), title)
        finally:
            store.close()
    emit({**result.summary(), "output": written}, as_json, result.to_text())


def near_repeat(
    distance_band: Annotated[int, typer.Option(help="Spatial band width in metres.")] = 100,
    distance_bands: Annotated[int, typer.Option(help="Number of spatial bands.")] = 5,
    time_band: Annotated[int, typer.Option(help="Temporal band width in days.")] = 14,
    time_bands: Annotated[int, typer.Option(help="Number of temporal bands.")] = 5,
    permutations: Annotated[int, typer.Option(help="Monte Carlo iterations.")] = 99,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    out: OutOpt = None,
    title: Annotated[str | None, typer.Option(help="Chart title.")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    kind: KindOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Near-repeat (Knox) test with the Near Repeat Calculator's observed/expected table."""
    from crimelens import analysis as an

    _check_out(out)
    flt = dataclasses.replace(make_filter(start, end, category, source, kind), located=True)
    with errors_to_exit(), _progress("Knox test", as_json):
        store = _open(db)
        try:
            pts = store.incidents(flt, columns=["x", "y", "occurred_at", "time_precision", "crs"])
            crs = _crs(store, flt)
            result = (
                an.KnoxTest(
                    spatial_bandwidth=distance_band,
                    n_spatial_bands=distance_bands,
                    temporal_bandwidth=time_band,
                    n_temporal_bands=time_bands,
                    n_permutations=permutations,
                    random_state=seed,
                )
                .fit(pts)
                .result_
            )
            written = _write(result, out, _quality(store, flt, crs), title)
        finally:
            store.close()
    emit({**result.summary(), "output": written}, as_json, result.to_text())


def register(app: typer.Typer) -> None:
    """Add the analysis commands to ``app``."""
    app.command("trends")(trends)
    app.command("compstat")(compstat)
    app.command("hotspots")(hotspots)
    app.command("near-repeat")(near_repeat)
