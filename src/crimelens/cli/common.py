"""Options and output shared by every command: ``--db``, ``--json``, filters, one-line errors."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, NoReturn

import typer

from crimelens.exceptions import CrimelensError, InputError
from crimelens.filters import IncidentFilter

DEFAULT_DB = "crimelens.duckdb"

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="DuckDB file, postgresql:// URL or lake:DIR / lake:s3://BUCKET/PREFIX (Parquet lake) "
                 "[default: $CRIMELENS_DB or ./crimelens.duckdb]"),
]
EngineOpt = Annotated[str, typer.Option("--engine", help="Engine: duckdb (default) or spark (needs --db lake:DIR).")]
SparkMasterOpt = Annotated[
    str | None,
    typer.Option("--spark-master", envvar="CRIMELENS_SPARK_MASTER",
                 help="Spark master for --engine spark: local[2] (default), spark://HOST:7077, yarn."),
]
SparkConfOpt = Annotated[
    list[str] | None, typer.Option("--spark-conf", help="Extra Spark setting KEY=VALUE (repeatable), e.g. "
                                   "spark.hadoop.fs.s3a.endpoint=...")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Start date (inclusive), YYYY-MM-DD.")]
ToOpt = Annotated[str | None, typer.Option("--to", help="End date (exclusive), YYYY-MM-DD.")]
CategoryOpt = Annotated[
    list[str] | None, typer.Option("--category", help="Category, roll-up or group (repeatable).")
]
SourceOpt = Annotated[list[str] | None, typer.Option("--source", help="Source name (repeatable).")]
KindOpt = Annotated[
    list[str] | None,
    typer.Option("--kind", help="Record kind: crime, stop, arrest, call_for_service, sensor (repeatable) "
                 "[default: crime]."),
]


def db_url(db: str | None) -> str:
    """The store URL: the option, else ``$CRIMELENS_DB``, else ``./crimelens.duckdb``."""
    return db or os.environ.get("CRIMELENS_DB") or DEFAULT_DB


def open_store(db: str | None, *, read_only: bool = False, engine: str = "duckdb",
               spark_master: str | None = None, spark_conf: list[str] | None = None) -> Any:
    """Open the store named by ``--db`` on ``--engine`` (a Spark session only for ``spark``).

    The URL is checked before Spark starts, so a wrong ``--db`` fails at once.
    """
    from crimelens.store import connect

    if engine != "spark":
        return connect(db_url(db), read_only=read_only, engine=engine)
    from crimelens.spark.session import parse_conf, spark_session
    from crimelens.store.connect import lake_dir

    url = db_url(db)
    lake = lake_dir(url)
    if lake is None:
        raise InputError(f"--engine spark needs a lake store (--db lake:DIR), not {url!r}")
    from crimelens.settings import Settings
    from crimelens.store.lakefs import is_object_store, s3a_conf

    settings = Settings()  # CRIMELENS_SPARK_MASTER / CRIMELENS_SPARK_CONF or .env; the flags win
    bucket = s3a_conf() if is_object_store(lake) else {}  # S3A reaches the bucket pyarrow reaches
    session = spark_session(spark_master or settings.spark_master,
                            conf={**bucket, **settings.spark_conf, **parse_conf(spark_conf)})
    return connect(url, read_only=read_only, engine="spark", spark=session)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print a one-line reason to stderr and exit non-zero."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Turn crimelens errors (and unreadable files) into one-line messages with exit code 2."""
    try:
        yield
    except CrimelensError as exc:
        fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except (OSError, ValueError) as exc:
        fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


def parse_date(text: str | None, name: str) -> datetime | None:
    """Parse an ISO date option; fail with a one-line message when malformed."""
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        fail(f"{name}: expected a date like 2024-01-31, got {text!r}")


def make_filter(
    start: str | None, end: str | None, categories: list[str] | None, sources: list[str] | None,
    kinds: list[str] | None = None,
) -> IncidentFilter:
    """Build the shared :class:`IncidentFilter` from the common options (crimes unless ``kinds``)."""
    with errors_to_exit():
        flt = IncidentFilter(
            start=parse_date(start, "--from"),
            end=parse_date(end, "--to"),
            categories=tuple(categories or ()),
            sources=tuple(sources or ()),
            kinds=tuple(kinds) if kinds else ("crime",),
        )
        flt.category_names()  # validate names early
    return flt


def emit(payload: Any, as_json: bool, human: str | None = None) -> None:
    """Print ``payload`` as JSON, or ``human`` text (falling back to indented JSON)."""
    if as_json:
        sys.stdout.write(json.dumps(payload, default=str) + "\n")
    else:
        typer.echo(human if human is not None else json.dumps(payload, indent=2, default=str))
