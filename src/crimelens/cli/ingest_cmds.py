"""``crimelens ingest``, ``info`` and ``quarantine``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crimelens.cli.common import (
    DbOpt,
    EngineOpt,
    JsonOpt,
    SparkConfOpt,
    SparkMasterOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    open_store,
)
from crimelens.exceptions import InputError


def ingest(
    files: Annotated[list[Path], typer.Argument(help="CSV (.gz/.zip), Parquet or GeoJSON files.")],
    preset: Annotated[str | None, typer.Option(help="Shipped preset (see `crimelens presets`).")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Mapping file (TOML) for any other source.")] = None,
    source: Annotated[str | None, typer.Option(help="Source name to record [default: the mapping's].")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse a file that lacks any column the mapping "
                                         "names (by default only required columns must be there).")] = False,
    db: DbOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load files into the store; each file is one atomic transaction."""
    from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

    from crimelens.ingest import ingest_file
    from crimelens.settings import Settings
    from crimelens.sources.mapping import load_mapping, load_preset

    if preset and mapping:
        fail("give --preset or --mapping, not both")
    reports = []
    with errors_to_exit():
        chosen = load_preset(preset) if preset else load_mapping(mapping) if mapping else None
        settings = Settings()
        key = settings.key_bytes()
        store = open_store(db, engine=engine, spark_master=spark_master, spark_conf=spark_conf)
        load: Any = ingest_file
        if engine == "spark":
            from crimelens.spark.ingest import ingest_file_spark

            load = ingest_file_spark
        try:
            for path in files:
                with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                              transient=True, disable=as_json) as bar:
                    task = bar.add_task(f"{path.name}: 0 rows", total=None)
                    def show(n: int, task: TaskID = task, name: str = path.name, bar: Progress = bar) -> None:
                        bar.update(task, description=f"{name}: {n:,} rows")

                    report = load(store, path, key=key, mapping=chosen, source=source, progress=show,
                                         strict=strict)
                if chosen is None and not as_json:
                    typer.echo(f"{path.name}: detected preset {report.preset!r}", err=True)
                if not report.balanced():
                    raise InputError(f"{path}: accounting does not balance: {report.to_dict()}")
                reports.append(report)
                if not as_json:
                    typer.echo(_human(report))
        finally:
            store.close()
    if as_json:
        dicts = [r.to_dict() for r in reports]
        emit(dicts[0] if len(dicts) == 1 else {"files": dicts, **_totals(dicts)}, True)


def _totals(dicts: list[dict[str, object]]) -> dict[str, object]:
    keys = ("read", "stored", "updated", "duplicates", "quarantined")
    out: dict[str, object] = {k: sum(int(d[k]) for d in dicts) for k in keys}  # type: ignore[call-overload]
    by_reason: dict[str, int] = {}
    for d in dicts:
        for k, v in d["by_reason"].items():  # type: ignore[attr-defined]
            by_reason[k] = by_reason.get(k, 0) + int(v)
    out["by_reason"] = by_reason
    out["preset"] = ",".join(sorted({str(d["preset"]) for d in dicts}))
    return out


def _human(r: object) -> str:
    d = r.to_dict()  # type: ignore[attr-defined]
    if d["skipped"]:
        return f"{Path(d['file']).name}: already ingested (sha256 {d['sha256'][:12]}…), nothing to do"
    lines = [
        f"{Path(d['file']).name} [{d['preset']}]: read {d['read']:,}  stored {d['stored']:,}  "
        f"updated {d['updated']:,}  duplicates {d['duplicates']:,}  quarantined {d['quarantined']:,}  "
        f"({d['seconds']} s)"
    ]
    if d["by_reason"]:
        lines.append("  quarantined by reason: " + ", ".join(f"{k} {v:,}" for k, v in d["by_reason"].items()))
    if d["unmapped"]:
        top = list(d["unmapped"].items())[:5]
        lines.append(f"  unmapped offence values ({len(d['unmapped'])}): " + ", ".join(f"{k!r} {v:,}" for k, v in top))
    if d["flags"]:
        lines.append("  location flags: " + ", ".join(f"{k} {v:,}" for k, v in d["flags"].items()))
    lines.extend(f"  note: {n}" for n in d["notes"])
    return "\n".join(lines)


def info(db: DbOpt = None, engine: EngineOpt = "duckdb", spark_master: SparkMasterOpt = None,
         spark_conf: SparkConfOpt = None, as_json: JsonOpt = False) -> None:
    """Summarise the store: totals, sources, categories, time span, quarantine."""
    with errors_to_exit():
        store = open_store(db, read_only=True, engine=engine, spark_master=spark_master, spark_conf=spark_conf)
        data = store.info()
        store.close()
    if as_json:
        emit(data, True)
        return
    lines = [
        f"store: {data['store']} (schema v{data['schema_version']}, {data['files']} files)",
        f"incidents: {data['incidents']:,}  from {data['first_occurred_at']} to {data['last_occurred_at']}",
        f"located: {data['located_share']:.1%}",
        "by source: " + ", ".join(f"{k} {v:,}" for k, v in data["by_source"].items()),
        "by category:",
        *[f"  {k:<28}{v:>10,}" for k, v in data["by_category"].items()],
        "quarantined: " + (", ".join(f"{k} {v:,}" for k, v in data["quarantined"].items()) or "none"),
    ]
    emit(data, False, "\n".join(lines))


def quarantine(
    export: Annotated[Path | None, typer.Option(help="Write the quarantined rows to this CSV file.")] = None,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts of quarantined rows by reason; optionally export them."""
    from crimelens.store import connect

    with errors_to_exit():
        store = connect(db_url(db), read_only=True)
        rows = store.quarantine(source=source)
        store.close()
        if export is not None:
            from crimelens.governance.exports import safe_csv

            safe_csv(rows, export)
    by_reason: dict[str, int] = {}
    for rec in rows.groupby(["source", "reason"]).size().reset_index(name="n").to_dict("records"):
        by_reason[f"{rec['source']}:{rec['reason']}"] = int(rec["n"])
    payload = {"total": len(rows), "by_reason": by_reason, "exported": str(export) if export else None}
    human = f"quarantined rows: {len(rows):,}\n" + "\n".join(f"  {k:<40}{v:>8,}" for k, v in by_reason.items())
    emit(payload, as_json, human)


def presets(as_json: JsonOpt = False) -> None:
    """List the shipped source presets."""
    from crimelens.sources.mapping import list_presets, load_preset

    items = {n: load_preset(n).description for n in list_presets()}
    emit(items, as_json, "\n".join(f"{k:<18}{v}" for k, v in items.items()))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command()(ingest)
    app.command()(info)
    app.command()(quarantine)
    app.command()(presets)
