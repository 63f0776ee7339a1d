"""``/incidents``: search with cursor pagination, one record, CSV export; role-based fields."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query
from fastapi.responses import Response

from crimelens.service import records
from crimelens.service.deps import Ctx, Filter, Limit, Reader, Svc, Viewer
from crimelens.service.schemas import IncidentOut, IncidentPage, errors

router = APIRouter(prefix="/incidents", tags=["incidents"], responses=errors(401, 403, 429))
Reason = Annotated[str | None, Header(alias="X-Access-Reason", max_length=500,
                                      description="why personal fields are needed (required for them; audited)")]


def _personal(fields: str, who: Viewer, reason: str | None) -> bool:
    """Whether personal originals are requested and allowed; 403/400 when not allowed or unexplained."""
    if fields != "personal":
        return False
    if not records.may_read_personal(who.role):
        raise HTTPException(403, "your role may not read personal fields")
    if not reason or len(reason.strip()) < 5:
        raise HTTPException(400, "state why you need personal fields in the X-Access-Reason header")
    return True


@router.get("", response_model=IncidentPage, summary="Search incidents (newest first)",
            dependencies=[Depends(Limit("search"))], responses=errors(400))
def search(who: Viewer, flt: Filter, svc: Svc, store: Reader, ctx: Ctx, reason: Reason = None,
           limit: Annotated[int, Query(ge=1, description="page size; capped at the server maximum")] = 100,
           cursor: Annotated[str | None, Query(max_length=500)] = None,
           fields: Literal["standard", "personal"] = "standard") -> IncidentPage:
    """A page of incidents matching the filters; pass ``next_cursor`` back as ``cursor``."""
    personal, limit = _personal(fields, who, reason), min(limit, svc.rt.settings.max_page_size)
    items, nxt = records.page(store, flt, who, limit=limit, cursor=cursor, personal=personal)
    ids = ",".join(f"{r['source']}/{r['incident_id']}" for r in items)
    svc.audit.record(ctx, "person.read" if personal else "incident.list", "ok", object_id=ids[:200],
                     reason=reason if personal else None, detail=f"{len(items)} rows")
    return IncidentPage(items=[IncidentOut(**r) for r in items], next_cursor=nxt, limit=limit, fields=fields)


@router.get("/export.csv", summary="Bulk CSV export (needs the export permission)",
            response_class=Response, dependencies=[Depends(Limit("export"))],
            responses={200: {"content": {"text/csv": {}}, "description": "CSV, formula cells neutralised"}})
def export(who: Viewer, flt: Filter, svc: Svc, store: Reader, ctx: Ctx,
           limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000) -> Response:
    """Incidents as CSV (no personal originals); every export is audited."""
    if not who.can_export:
        svc.audit.record(ctx, "incident.export", "denied")
        raise HTTPException(403, "export permission required")
    frame = records.export_rows(store, flt, limit)
    svc.audit.record(ctx, "incident.export", "ok", detail=f"{len(frame)} rows")
    return Response(frame.to_csv(index=False), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="incidents.csv"'})


@router.get("/{source}/{incident_id}", response_model=IncidentOut, summary="One incident",
            responses=errors(400, 404))
def get_one(source: str, incident_id: str, who: Viewer, svc: Svc, store: Reader, ctx: Ctx, reason: Reason = None,
            fields: Literal["standard", "personal"] = "standard") -> IncidentOut:
    """One incident by source and id, with the fields the caller's role may read."""
    personal = _personal(fields, who, reason)
    row = records.one(store, source, incident_id, who, personal=personal)
    svc.audit.record(ctx, "person.read" if personal else "incident.read", "ok" if row else "not_found",
                     object_id=f"{source}/{incident_id}", reason=reason if personal else None)
    if row is None:
        raise HTTPException(404, "no such incident")
    return IncidentOut(**row)
