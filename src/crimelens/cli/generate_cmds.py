"""``crimelens generate``: write a seeded synthetic city as a portal file (and its ground truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crimelens.cli.common import JsonOpt, emit, errors_to_exit, fail


def generate(
    out: Annotated[Path, typer.Option("--out", help="Output CSV (.csv or .csv.gz).")],
    incidents: Annotated[int, typer.Option("--incidents", help="Number of incidents.")] = 50_000,
    days: Annotated[int, typer.Option("--days", help="Length of the period in days.")] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same city).")] = 0,
    start: Annotated[str, typer.Option("--start", help="First day, YYYY-MM-DD (local time).")] = "2022-01-01",
    fmt: Annotated[str, typer.Option("--format", help="chicago | canonical")] = "chicago",
    kind: Annotated[str, typer.Option("--kind", help="realistic | poisson")] = "realistic",
    dirt: Annotated[bool, typer.Option("--dirt", help="Inject missing/bad coordinates, bad dates, "
                                                      "duplicates and unmapped offences.")] = False,
    truth: Annotated[Path | None, typer.Option("--truth", help="Write the ground truth (JSON + "
                                                              "<stem>.intensity.parquet).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a synthetic city with known hot spots, seasonality and near-repeat contagion."""
    from crimelens.synth import FORMATS, CityConfig, DirtConfig, generate_city, write_portal

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    with errors_to_exit():
        config = CityConfig(n_incidents=incidents, days=days, seed=seed, start=start, kind=kind)  # type: ignore[arg-type]  # kind is validated by CityConfig
        if not as_json:
            typer.echo(f"generating {incidents:,} incidents over {days} days (seed {seed})…", err=True)
        city = generate_city(config)
        report = write_portal(city, out, fmt=fmt, dirt=DirtConfig() if dirt else None)
        written = [str(p) for p in city.truth.write(truth)] if truth is not None else []
    payload = {"out": str(out), "incidents": incidents, "format": fmt, "seed": seed,
               "dirt": report.counts if dirt else {}, "rows_written": report.rows_written, "truth": written}
    human = f"wrote {report.rows_written:,} rows ({fmt}) to {out}" + (
        f"; truth in {', '.join(written)}" if written else "")
    emit(payload, as_json, human)


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the application."""
    app.command("generate")(generate)
