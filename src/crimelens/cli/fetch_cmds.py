"""``crimelens fetch socrata | arcgis | police-uk``: fetch from an open-data portal and ingest.

Each command builds a query, fetches it through the SEC-14 :class:`~crimelens.connectors.Fetcher`
(hosts from ``CRIMELENS_FETCH_ALLOW_HOSTS`` plus ``--allow-host``), stages the records as one
CSV file and ingests it atomically, printing the ingest report (and pages fetched).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crimelens.cli.common import DbOpt, JsonOpt, db_url, emit, errors_to_exit, fail, parse_date

if TYPE_CHECKING:
    from crimelens.connectors.fetch import Fetcher
    from crimelens.connectors.staging import FetchResult
    from crimelens.settings import Settings
    from crimelens.sources.mapping import Mapping
    from crimelens.store.base import Store

fetch_app = typer.Typer(help="Fetch from open-data portals (Socrata, ArcGIS, police.uk) and ingest.",
                        no_args_is_help=True)

AllowHostOpt = Annotated[list[str] | None, typer.Option(
    "--allow-host", help="Host (or *.suffix) to allow for this run, besides CRIMELENS_FETCH_ALLOW_HOSTS (repeatable).")]
KeepOpt = Annotated[Path | None, typer.Option("--keep", help="Keep the staged CSV file at this path.")]
PresetOpt = Annotated[str | None, typer.Option("--preset", help="Shipped preset mapping the fetched fields.")]
MappingOpt = Annotated[Path | None, typer.Option("--mapping", help="Mapping file (TOML) for the fetched fields.")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="Source name to record [default: the mapping's].")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="Fetch at most this many records.")]

Work = Callable[["Fetcher", "Store", bytes, Path | None], "FetchResult"]


def default_fetcher(hosts: Sequence[str], settings: Settings) -> Fetcher:
    """The production fetcher: system CA store, public addresses only, limits from settings."""
    from crimelens.connectors.fetch import Fetcher

    return Fetcher(allow_hosts=tuple(hosts), max_bytes=int(settings.fetch_max_mb * 1024 * 1024),
                   timeout_s=settings.fetch_timeout_s)


#: Builds the fetcher for every command. Tests replace it (to trust a test certificate and reach
#: 127.0.0.1); it is deliberately not reachable from options or the environment.
fetcher_factory: Callable[[Sequence[str], Settings], Fetcher] = default_fetcher


def _mapping(preset: str | None, mapping: Path | None, default: str | None = None) -> Mapping | None:
    from crimelens.sources.mapping import load_mapping, load_preset

    if preset and mapping:
        fail("give --preset or --mapping, not both")
    if mapping:
        return load_mapping(mapping)
    name = preset or default
    return load_preset(name) if name else None


def _workdir(url: str) -> Path | None:
    """Stage next to a DuckDB file; in the system temporary folder for a server store."""
    if "://" in url or url == ":memory:":
        return None
    return Path(url).expanduser().resolve().parent


def _run(work: Work, *, target: str, check: Callable[[], object], db: str | None, as_json: bool,
         allow_host: list[str] | None, label: str) -> None:
    """Check ``target`` against the policy and ``check()`` the query, then open the store, run
    ``work`` and print the report; any error is one line and exit code 2 (and no store is
    created for a refused URL)."""
    from rich.console import Console

    from crimelens.cli.ingest_cmds import _human
    from crimelens.exceptions import InputError
    from crimelens.settings import Settings
    from crimelens.store import connect

    with errors_to_exit():
        settings = Settings()
        hosts = [h.strip() for h in settings.fetch_allow_hosts.split(",") if h.strip()] + list(allow_host or [])
        fetcher = fetcher_factory(hosts, settings)
        fetcher.check_url(target)
        check()
        key = settings.key_bytes()
        url = db_url(db)
        store = connect(url)
        try:
            with Console(stderr=True).status(f"fetching from {label}…") if not as_json else nullcontext():
                result = work(fetcher, store, key, _workdir(url))
        finally:
            store.close()
        if not result.report.balanced():
            raise InputError(f"accounting does not balance: {result.report.to_dict()}")
    if as_json:
        emit(result.to_dict(), True)
    else:
        emit(None, False, f"{result.url}: {result.records:,} records in {result.pages} pages\n"
                          + _human(result.report))


@fetch_app.command("socrata")
def socrata(
    url: Annotated[str, typer.Argument(help="Dataset API URL, e.g. https://data.cityofchicago.org/resource/ijzp-q8t2.json")],
    preset: PresetOpt = None,
    mapping: MappingOpt = None,
    source: SourceOpt = None,
    since: Annotated[str | None, typer.Option("--since", help="Only rows dated on or after this.")] = None,
    date_field: Annotated[str, typer.Option("--date-field", help="Date field for --since.")] = "date",
    order: Annotated[str, typer.Option("--order", help="Stable sort field for paging.")] = ":id",
    limit: LimitOpt = None,
    page_size: Annotated[int, typer.Option("--page-size", help="Rows per request (at most 50000).")] = 50_000,
    allow_host: AllowHostOpt = None,
    keep: KeepOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch a Socrata (SODA) dataset page by page and ingest it (token: CRIMELENS_SOCRATA_APP_TOKEN)."""
    from crimelens.connectors.socrata import SocrataQuery, fetch_socrata
    from crimelens.settings import Settings

    with errors_to_exit():
        chosen = _mapping(preset, mapping)
        token = Settings().socrata_app_token
        query = SocrataQuery(url=url, page_size=page_size, limit=limit, order=order,
                             since=parse_date(since, "--since"), date_field=date_field,
                             app_token=token.get_secret_value() if token else None)

    def work(f: Fetcher, s: Store, key: bytes, wd: Path | None) -> FetchResult:
        return fetch_socrata(f, s, query, key=key, mapping=chosen, source=source, workdir=wd, keep=keep)

    _run(work, target=url, check=query.endpoint, db=db, as_json=as_json, allow_host=allow_host, label="Socrata")


@fetch_app.command("arcgis")
def arcgis(
    url: Annotated[str, typer.Argument(help="Layer URL ending in /FeatureServer/<n> or /MapServer/<n>.")],
    mapping: MappingOpt = None,
    preset: PresetOpt = None,
    source: SourceOpt = None,
    where: Annotated[str, typer.Option("--where", help="SQL where clause for the layer query.")] = "1=1",
    out_sr: Annotated[int, typer.Option("--out-sr", help="Spatial reference of geometry_x/_y (EPSG).")] = 4326,
    limit: LimitOpt = None,
    page_size: Annotated[int | None, typer.Option("--page-size", help="Features per request [default: "
                                                  "the layer's maxRecordCount].")] = None,
    allow_host: AllowHostOpt = None,
    keep: KeepOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch an ArcGIS FeatureServer/MapServer layer page by page and ingest it."""
    from crimelens.connectors.arcgis import ArcGISQuery, fetch_arcgis

    with errors_to_exit():
        chosen = _mapping(preset, mapping)
        query = ArcGISQuery(url=url, where=where, page_size=page_size, limit=limit, out_sr=out_sr)

    def work(f: Fetcher, s: Store, key: bytes, wd: Path | None) -> FetchResult:
        return fetch_arcgis(f, s, query, key=key, mapping=chosen, source=source, workdir=wd, keep=keep)

    _run(work, target=url, check=query.layer_url, db=db, as_json=as_json, allow_host=allow_host, label="ArcGIS")


@fetch_app.command("police-uk")
def police_uk(
    month: Annotated[str, typer.Option("--month", help="Month to fetch, YYYY-MM.")],
    force: Annotated[str | None, typer.Option("--force", help="Force id, e.g. west-yorkshire.")] = None,
    poly: Annotated[str | None, typer.Option("--poly", help="Polygon lat,lng:lat,lng:... instead of a force.")] = None,
    no_location: Annotated[bool, typer.Option("--no-location", help="The force's crimes without a location.")] = False,
    category: Annotated[str, typer.Option("--category", help="Crime category slug.")] = "all-crime",
    base_url: Annotated[str, typer.Option("--base-url", help="API base URL.")] = "https://data.police.uk/api",
    mapping: MappingOpt = None,
    source: SourceOpt = None,
    allow_host: AllowHostOpt = None,
    keep: KeepOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch one month of police.uk crime (by force or polygon) and ingest it with the police_uk preset."""
    from crimelens.connectors.policeuk import PoliceUKQuery, fetch_policeuk

    with errors_to_exit():
        chosen = _mapping(None, mapping, default="police_uk")
        query = PoliceUKQuery(month=month, force=force, poly=poly, no_location=no_location,
                              category=category, base_url=base_url)
    preset_map: Mapping | None = chosen
    if preset_map is None:  # pragma: no cover - the default preset always loads
        fail("no mapping")

    def work(f: Fetcher, s: Store, key: bytes, wd: Path | None) -> FetchResult:
        return fetch_policeuk(f, s, query, key=key, mapping=preset_map, source=source, workdir=wd, keep=keep)

    _run(work, target=base_url, check=query.base, db=db, as_json=as_json, allow_host=allow_host,
         label="police.uk")


def register(app: typer.Typer) -> None:
    """Add ``fetch`` to the application."""
    app.add_typer(fetch_app, name="fetch")
