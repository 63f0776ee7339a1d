"""``/audit`` (admin): read, verify and purge the audit log (reads are audited too)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from crimelens.service.deps import Admin, Ctx, Svc
from crimelens.service.schemas import AuditRowOut, AuditVerifyOut, errors

router = APIRouter(prefix="/audit", tags=["audit"], responses=errors(401, 403))


@router.get("", response_model=list[AuditRowOut], summary="Audit rows (oldest first after a sequence number)")
def read(_: Admin, svc: Svc, ctx: Ctx, after: Annotated[int, Query(ge=0)] = 0,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100,
         event: Annotated[str | None, Query(max_length=64)] = None) -> list[AuditRowOut]:
    """Rows with ``seq > after``; this read is itself recorded."""
    svc.audit.record(ctx, "audit.read", "ok", detail=f"after={after} limit={limit}")
    rows = svc.audit.rows(after=after, limit=limit, event=event)
    return [AuditRowOut(**{**r, "ts": r["ts"].isoformat()}) for r in rows]


@router.get("/verify", response_model=AuditVerifyOut, summary="Verify the hash chain")
def verify(_: Admin, svc: Svc, ctx: Ctx) -> AuditVerifyOut:
    """Recompute every row's hash; ``first_bad`` names the first altered row."""
    svc.audit.record(ctx, "audit.verify", "ok")
    return AuditVerifyOut(**svc.audit.verify())


@router.post("/purge", response_model=dict[str, int], summary="Remove rows past the retention period")
def purge(_: Admin, svc: Svc, ctx: Ctx) -> dict[str, int]:
    """Delete rows older than ``audit_retention_days`` (at least 365); younger rows are never removed."""
    return {"removed": svc.audit.purge(ctx)}
