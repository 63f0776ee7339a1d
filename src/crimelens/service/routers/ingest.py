"""``POST /ingest``: upload a file (with a preset or a mapping file) → a background load job."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile

from crimelens.service import loads
from crimelens.service.deps import Analyst, Ctx, Svc
from crimelens.service.schemas import JobOut, errors

router = APIRouter(tags=["ingest"], responses=errors(400, 401, 403, 413))


@router.post("/ingest", response_model=JobOut, status_code=202, summary="Upload a file to load (background job)")
def ingest(who: Analyst, svc: Svc, ctx: Ctx,
           file: Annotated[UploadFile, File(description="CSV (.gz/.zip), Parquet or GeoJSON")],
           preset: Annotated[str | None, Form(max_length=64, description="shipped preset, e.g. chicago")] = None,
           source: Annotated[str | None, Form(max_length=64, description="source name to record")] = None,
           mapping: Annotated[UploadFile | None, File(description="mapping file (TOML)")] = None) -> JobOut:
    """Store the upload, queue its load, and return the job (poll ``GET /jobs/{id}``)."""
    job_id = loads.submit_upload(svc, who.username, ctx, file, preset=preset, source=source, mapping=mapping)
    job = svc.jobs.get(job_id)
    assert job is not None
    return JobOut(**loads.job_json(job))
