"""``crimelens db upgrade`` and ``crimelens db version``: the store's versioned schema migrations."""

from __future__ import annotations

from typing import Any

import typer

from crimelens.cli.common import DbOpt, JsonOpt, db_url, emit, errors_to_exit

db_app = typer.Typer(help="Store schema: apply migrations, show the version.", no_args_is_help=True)


def _service_tables(url: str) -> None:
    """Create the service's tables (users, sessions, audit, jobs, alerts) in a PostgreSQL store."""
    from crimelens.service.runtime import Runtime
    from crimelens.settings import Settings

    Runtime(Settings().model_copy(update={"db": url})).close()


@db_app.command("upgrade")
def upgrade(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Apply the migrations the store lacks (each in a transaction; idempotent; refuses a newer store)."""
    from crimelens.store.upgrade import upgrade as run

    with errors_to_exit():
        url = db_url(db)
        out: dict[str, Any] = run(url)
        if out["backend"] == "postgres":
            try:
                _service_tables(url)
                out["service_tables"] = True
            except ImportError:  # no [server] extra: the service creates them when it starts
                out["service_tables"] = False
    applied = ", ".join(str(v) for v in out["applied"]) or "none"
    emit(out, as_json, f"schema version {out['version']} (this crimelens: {out['code_version']}); "
                       f"applied now: {applied}")


@db_app.command("version")
def version(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Show the store's schema version, this code's, and the steps still pending."""
    from crimelens.store.upgrade import status

    with errors_to_exit():
        out = status(db_url(db))
    pending = ", ".join(str(v) for v in out["pending"]) or "none"
    emit(out, as_json, f"schema version {out['version']} (this crimelens: {out['code_version']}); "
                       f"pending: {pending}")


def register(app: typer.Typer) -> None:
    """Add ``db`` to ``app``."""
    app.add_typer(db_app, name="db")
