"""Uploads into background load jobs, and what happens when a load commits.

The upload is streamed to a private temporary folder (size-limited), then
:func:`crimelens.ingest.ingest_file` loads it on the service's writer connection in the job
thread. When it commits, cached results are invalidated, the new incidents are announced on
the live feed (without personal fields; points rounded to about 100 m), and the areas they touch
are re-evaluated for alerts (:meth:`crimelens.service.alerting.Alerting.on_batch`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException, UploadFile

from crimelens.exceptions import InputError
from crimelens.service.audit import AuditContext

if TYPE_CHECKING:
    from crimelens.service.deps import Service

_SUFFIXES = {".csv", ".gz", ".zip", ".parquet", ".geojson", ".json", ".txt", ".tsv"}


def _save(upload: UploadFile, folder: Path, limit: int, name: str | None = None) -> Path:
    given = Path(upload.filename or "upload.csv").name
    suffix = "".join(s for s in Path(given).suffixes[-2:] if s.lower() in _SUFFIXES) or ".csv"
    target = folder / (name or f"upload{suffix}")
    written = 0
    with target.open("wb") as fh:
        while block := upload.file.read(1 << 20):
            written += len(block)
            if written > limit:
                raise HTTPException(413, "upload larger than the configured limit")
            fh.write(block)
    return target


def submit_upload(svc: Service, owner: str, ctx: AuditContext, upload: UploadFile, *, preset: str | None,
                  source: str | None, mapping: UploadFile | None) -> str:
    """Save the upload and queue its load; returns the job id."""
    from crimelens.sources.mapping import load_mapping, load_preset

    s = svc.rt.settings
    if s.upload_dir is not None:
        s.upload_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="crimelens-upload-", dir=s.upload_dir))
    try:
        path = _save(upload, folder, s.max_upload_mb << 20)
        chosen = None
        if mapping is not None:
            chosen = load_mapping(_save(mapping, folder, 1 << 20, "mapping.toml"))
        elif preset:
            chosen = load_preset(preset)
    except (InputError, HTTPException):
        shutil.rmtree(folder, ignore_errors=True)
        raise
    params = {"file": Path(upload.filename or "").name[:200], "preset": preset, "source": source,
              "mapping": bool(mapping)}

    def work(progress: Any) -> dict[str, Any]:
        from crimelens.ingest import ingest_file

        try:
            report = ingest_file(svc.rt.store, path, key=s.key_bytes(), mapping=chosen, source=source,
                                 progress=progress)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        out = report.to_dict()
        out["file"] = params["file"]
        return out

    def done(job_id: str, result: dict[str, Any]) -> None:
        loaded(svc, result)
        svc.audit.record(AuditContext(owner, ctx.source_ip, ctx.request_id), "incident.create", "ok",
                         component="ingest", object_id=job_id,
                         detail=f"batch {result['batch_id']}: stored {result['stored']}, "
                                f"updated {result['updated']}, quarantined {result['quarantined']}")

    job_id = svc.jobs.submit("ingest", owner, params, work, done)
    svc.audit.record(ctx, "ingest.submit", "ok", component="ingest", object_id=job_id, detail=str(params["file"]))
    return job_id


def loaded(svc: Service, report: dict[str, Any]) -> None:
    """After a commit: invalidate caches, announce the batch on the live feed (once per process,
    :func:`crimelens.service.batchfeed.announce`) and rebuild the rollup."""
    from crimelens.service.batchfeed import announce

    svc.rt.bump()
    if report.get("skipped") or not (report.get("stored") or report.get("updated")):
        return
    announce(svc, report["batch_id"], report)
    svc.rt.warm()  # rebuild the aggregate rollup here, in the job thread, not in the next request


def job_json(job: dict[str, Any]) -> dict[str, Any]:
    """A job row with its timestamps as ISO strings."""
    out = dict(job)
    for k in ("created_at", "finished_at"):
        if out.get(k) is not None:
            out[k] = out[k].isoformat()
    return out
