"""Background jobs (ingest uploads) run one at a time on the store's writer connection.

A job row lives in ``svc_jobs``; progress (rows read so far) is kept in memory while the job
runs and written when it ends. One worker thread serialises jobs, which is also what DuckDB's
single-writer rule requires.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any

from crimelens.exceptions import CrimelensError
from crimelens.service.runtime import Runtime

log = logging.getLogger("crimelens.service.jobs")
JOB_FIELDS = ("id", "kind", "owner", "status", "progress", "created_at", "finished_at", "params", "result", "error")
Work = Callable[[Callable[[int], None]], dict[str, Any]]
Done = Callable[[str, dict[str, Any]], None]
_Item = tuple[str, Work, Done | None]


class Jobs:
    """Queue, run and describe background jobs."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._queue: queue.Queue[_Item | threading.Event | None] = queue.Queue()
        self._progress: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, kind: str, owner: str, params: dict[str, Any], work: Work,
               on_done: Done | None = None) -> str:
        """Queue ``work(progress)``; returns the job id."""
        job_id = uuid.uuid4().hex
        self.rt.write("INSERT INTO svc_jobs (id, kind, owner, status, created_at, params) VALUES (?, ?, ?, ?, ?, ?)",
                      [job_id, kind, owner, "queued", self.rt.clock(), json.dumps(params)])
        self._ensure_worker()
        self._queue.put((job_id, work, on_done))
        return job_id

    def _ensure_worker(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="crimelens-jobs", daemon=True)
                self._thread.start()

    def get(self, job_id: str) -> dict[str, Any] | None:
        """One job as a dict (with live progress), or None."""
        rows = self.rt.query(f"SELECT {', '.join(JOB_FIELDS)} FROM svc_jobs WHERE id = ?", [job_id])  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
        return self._dict(rows[0]) if rows else None

    def list(self, owner: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Recent jobs, newest first; only ``owner``'s when given."""
        sql = f"SELECT {', '.join(JOB_FIELDS)} FROM svc_jobs"  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
        params: list[Any] = []
        if owner is not None:
            sql += " WHERE owner = ?"
            params.append(owner)
        sql += " ORDER BY created_at DESC LIMIT ?"
        return [self._dict(r) for r in self.rt.query(sql, [*params, limit])]

    def wait(self, timeout: float = 60.0) -> None:
        """Block until every queued job has finished (for tests and the demo)."""
        done = threading.Event()
        self._ensure_worker()
        self._queue.put(done)
        done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Let the worker finish the jobs already queued, then exit (waits up to ``timeout``)."""
        self._queue.put(None)
        thread = self._thread
        if thread is not None and thread.is_alive():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            self._execute(*item)

    def _execute(self, job_id: str, work: Work, on_done: Done | None) -> None:
        self.rt.write("UPDATE svc_jobs SET status = 'running' WHERE id = ?", [job_id])

        def progress(n: int) -> None:
            self._progress[job_id] = n

        try:
            result = work(progress)
        except (CrimelensError, OSError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._finish(job_id, "failed", None, msg[:500])
            return
        except Exception:  # a job must never kill the worker; the detail goes to the server log only
            log.exception("job %s failed unexpectedly", job_id)
            self._finish(job_id, "failed", None, "internal error")
            return
        self._finish(job_id, "done", result, None)
        if on_done is not None:
            on_done(job_id, result)

    def _finish(self, job_id: str, status: str, result: dict[str, Any] | None, error: str | None) -> None:
        n = self._progress.pop(job_id, 0)
        self.rt.write("UPDATE svc_jobs SET status = ?, progress = ?, finished_at = ?, result = ?, error = ? "
                      "WHERE id = ?",
                      [status, n, self.rt.clock(), json.dumps(result, default=str) if result else None, error, job_id])

    def _dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        d = dict(zip(JOB_FIELDS, row, strict=True))
        if d["status"] == "running":
            d["progress"] = self._progress.get(d["id"], d["progress"])
        for k in ("params", "result"):
            d[k] = json.loads(d[k]) if d[k] else None
        return d
