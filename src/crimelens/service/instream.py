"""A stream consumer inside the service: ``crimelens serve --stream URL --stream-preset P``.

On DuckDB this is how a stream reaches the dashboards: while the service holds the file
read-write, DuckDB lets no other process open it, not even read-only (its file lock), so a
separate ``crimelens stream --db same.duckdb`` is refused as busy. Here the consumer
(:func:`crimelens.stream.consume`, the same loop, acknowledgements and exactly-once accounting as
``crimelens stream``) runs in a thread of the service process on its own cursor of the service's
database, and each committed micro-batch is announced on the live feed at once
(:func:`crimelens.service.batchfeed.announce`) and evaluated for alerts. On PostgreSQL it works
too (with its own connection), though a separate ``crimelens stream`` process is the usual set-up
there. One process only: with ``--workers`` > 1 run ``crimelens stream`` beside the service.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crimelens.exceptions import CrimelensError
from crimelens.store.duckdb import DuckDBStore
from crimelens.stream.options import StreamOptions

if TYPE_CHECKING:
    from crimelens.service.deps import Service

log = logging.getLogger("crimelens.service.stream")


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """What ``serve --stream`` was given: the consumer's options and the records' preset."""

    options: StreamOptions
    preset: str


class _Cursor(DuckDBStore):
    """The service's DuckDB store on a cursor of its own (a thread of its own may use it)."""

    def __init__(self, parent: DuckDBStore) -> None:  # deliberately skips the parent's connect
        self.url = parent.url
        self.read_only = False
        self.con = parent.cursor()


class ServiceStream:
    """The consumer thread; :meth:`stop` lets it finish the micro-batch in hand."""

    def __init__(self, svc: Service, spec: StreamSpec) -> None:
        self.svc, self.spec = svc, spec
        self.summary: Any = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crimelens-stream", daemon=True)

    @classmethod
    def start_if(cls, svc: Service, spec: StreamSpec | None) -> ServiceStream | None:
        """Start a consumer for ``spec``; None without one."""
        if spec is None:
            return None
        me = cls(svc, spec)
        me._thread.start()
        return me

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the current micro-batch (loaded and acknowledged, or redelivered later)."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        from crimelens.service.batchfeed import announce
        from crimelens.sources.mapping import load_preset
        from crimelens.store.postgres import PostgresStore
        from crimelens.stream import consume
        from crimelens.stream.broker import safe_url

        rt = self.svc.rt
        store: Any = PostgresStore(rt.settings.db) if rt.postgres else _Cursor(rt.store)

        def on_batch(report: Any, messages: list[Any]) -> None:
            rt.bump()
            announce(self.svc, report.batch_id, report.to_dict())

        where = safe_url(self.spec.options.url)
        log.info("stream %s [%s] into the service's store", where, self.spec.preset)
        try:
            self.summary = consume(store, load_preset(self.spec.preset), self.spec.options,
                                   key=rt.settings.key_bytes(), on_batch=on_batch, stop=self._stop)
        except CrimelensError as exc:  # the service stays up; the error is logged and kept
            self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            log.error("stream %s stopped: %s", where, self.error)
        finally:
            if rt.postgres:
                store.close()
            else:
                store.con.close()  # the cursor only: the service's connection stays open
