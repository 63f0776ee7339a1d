"""``/jobs``: background jobs; callers see their own, admins see all."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from crimelens.service.auth import Role
from crimelens.service.deps import Svc, Viewer
from crimelens.service.loads import job_json
from crimelens.service.schemas import JobOut, errors

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=errors(401, 403))


@router.get("", response_model=list[JobOut], summary="Recent jobs")
def list_jobs(who: Viewer, svc: Svc, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[JobOut]:
    """The caller's jobs (all jobs for admins), newest first."""
    owner = None if who.role is Role.admin else who.username
    return [JobOut(**job_json(j)) for j in svc.jobs.list(owner, limit)]


@router.get("/{job_id}", response_model=JobOut, summary="One job with its progress", responses=errors(404))
def get_job(job_id: str, who: Viewer, svc: Svc) -> JobOut:
    """Status, rows read so far, and the load report when done; other users' jobs do not exist for you."""
    job = svc.jobs.get(job_id)
    if job is None or (who.role is not Role.admin and job["owner"] != who.username):
        raise HTTPException(404, "no such job")
    return JobOut(**job_json(job))
