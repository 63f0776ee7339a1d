"""``crimelens stream``: live ingest from NATS JetStream, MQTT or AMQP (needs the ``[stream]`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crimelens.cli.common import DbOpt, JsonOpt, db_url, emit, errors_to_exit, fail

if TYPE_CHECKING:
    from crimelens.store.base import IngestReport
    from crimelens.stream.records import Message


def stream(
    stream_name: Annotated[str, typer.Option("--stream", help="JetStream stream name (NATS).")] = "",
    subject: Annotated[str, typer.Option(
        help="NATS subject (filter) to consume, e.g. crimes.chicago; for MQTT/AMQP overrides the URL's topic/queue."
    )] = "",
    url: Annotated[str, typer.Option(
        help="Broker: nats://host:4222, mqtt://host:1883/TOPIC or amqp://user:pass@host:5672/QUEUE."
    )] = "nats://127.0.0.1:4222",
    preset: Annotated[str | None, typer.Option(help="Shipped preset the records follow.")] = None,
    mapping: Annotated[Path | None, typer.Option(help="Mapping file (TOML) the records follow.")] = None,
    source: Annotated[str | None, typer.Option(help="Source name to record [default: the mapping's].")] = None,
    durable: Annotated[str, typer.Option(
        help="NATS durable consumer / MQTT client id: its position survives restarts.")] = "crimelens",
    batch: Annotated[int, typer.Option(min=1, help="Most messages in one micro-batch (one transaction).")] = 500,
    max_wait: Annotated[float, typer.Option(min=0.01, help="Seconds a micro-batch waits to fill.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Drain what is there, then exit.")] = False,
    idle_exit: Annotated[
        float | None, typer.Option(min=0.0, help="Exit after this many seconds without a message.")
    ] = None,
    max_bytes: Annotated[int, typer.Option(min=1, help="Largest message body; larger ones are quarantined.")]
    = 1_048_576,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Load incident records from NATS JetStream, MQTT or AMQP, one atomic micro-batch at a time.

    Runs until interrupted: SIGINT or SIGTERM finishes the current batch, then exits. Messages
    are acknowledged only after their batch is committed.
    """
    if preset and mapping:
        fail("give --preset or --mapping, not both")
    if not (preset or mapping):
        fail("give --preset or --mapping: the fields of the stream's records")
    if once and idle_exit is not None:
        fail("give --once or --idle-exit, not both")
    if url.split("://", 1)[0].lower() in ("nats", "tls") and not (stream_name and subject):
        fail("NATS needs --stream and --subject")
    with errors_to_exit():
        from crimelens.exceptions import InputError, require_extra

        require_extra("nats", "stream")
        from crimelens.settings import Settings
        from crimelens.sources.mapping import load_mapping, load_preset
        from crimelens.store import connect
        from crimelens.stream import StreamOptions, consume

        chosen = load_preset(preset) if preset else load_mapping(mapping)  # type: ignore[arg-type]
        options = StreamOptions(stream=stream_name, subject=subject, url=url, durable=durable, batch=batch,
                                max_wait=max_wait, idle_exit=0.0 if once else idle_exit, source=source,
                                max_bytes=max_bytes)
        key = Settings().key_bytes()

        def show(report: IngestReport, messages: list[Message]) -> None:
            seqs = [m.seq for m in messages]
            line = (f"batch seq {min(seqs)}-{max(seqs)} ({len(messages)} messages): read {report.read:,}  "
                    f"stored {report.stored:,}  updated {report.updated:,}  duplicates {report.duplicates:,}  "
                    f"quarantined {report.quarantined:,}  ({report.seconds} s)")
            if report.by_reason:
                line += "  [" + ", ".join(f"{k} {v:,}" for k, v in report.by_reason.items()) + "]"
            typer.echo(line, err=as_json)

        store = connect(db_url(db))
        try:
            summary = consume(store, chosen, options, key=key, on_batch=show, handle_signals=True)
        finally:
            store.close()
        if not summary.balanced():
            raise InputError(f"accounting does not balance: {summary.to_dict()}")
    data = summary.to_dict()
    human = (f"{summary_name(url, data['stream'])} [{data['preset']}]: {data['batches']} batches, "
             f"{data['messages']:,} messages: "
             f"read {data['read']:,}  stored {data['stored']:,}  updated {data['updated']:,}  "
             f"duplicates {data['duplicates']:,}  quarantined {data['quarantined']:,}")
    if data["by_reason"]:
        human += "\n  quarantined by reason: " + ", ".join(f"{k} {v:,}" for k, v in data["by_reason"].items())
    emit(data, as_json, human)


def summary_name(url: str, where: str) -> str:
    """``where`` with the broker kind for MQTT and AMQP (``mqtt:sensors/#``); a NATS stream as it is."""
    kind = url.split("://", 1)[0].lower() if "://" in url else "nats"
    return where if kind in ("nats", "tls") else f"{kind.rstrip('s')}:{where}"


def register(app: typer.Typer) -> None:
    """Add ``crimelens stream`` to ``app``."""
    app.command("stream")(stream)
