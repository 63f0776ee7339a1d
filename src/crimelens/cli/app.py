"""The Typer application: ``crimelens COMMAND``.

Commands live in one module per area (``ingest_cmds``, ``analysis_cmds``, ...); each module has a
``register(app)`` function called here.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="crimelens",
    help="Police incident records to decisions: ingest, clean, store, analyse, forecast, act.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Command modules, in help order. A module that needs an optional extra registers nothing
#: when the extra is missing.
COMMAND_MODULES = (
    "crimelens.cli.ingest_cmds",
    "crimelens.cli.stream_cmds",
    "crimelens.cli.fetch_cmds",
    "crimelens.cli.generate_cmds",
    "crimelens.cli.demo_cmds",
    "crimelens.cli.analysis_cmds",
    "crimelens.cli.forecast_cmds",
    "crimelens.cli.patrol_cmds",
    "crimelens.cli.governance_cmds",
    "crimelens.cli.publish_cmds",
    "crimelens.cli.classify_cmds",
    "crimelens.cli.alerts_cmds",
    "crimelens.cli.report_cmds",
    "crimelens.cli.service_cmds",
    "crimelens.cli.db_cmds",
    "crimelens.cli.drivers_cmds",
    "crimelens.cli.rtm_cmds",
    "crimelens.cli.ops_cmds",
    "crimelens.cli.feeds_cmds",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
