"""``/quarantine``: rejected rows, summarised for everyone and raw for analysts with a reason."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query

from crimelens.service.deps import Analyst, Ctx, Reader, Svc, Viewer
from crimelens.service.schemas import QuarantineRowsOut, QuarantineSummaryOut, errors

router = APIRouter(prefix="/quarantine", tags=["quarantine"], responses=errors(401, 403))


@router.get("/summary", response_model=QuarantineSummaryOut, summary="Quarantined rows per source and reason")
def summary(who: Viewer, store: Reader) -> QuarantineSummaryOut:
    """Counts only (no raw values)."""
    frame = store.execute("SELECT source, reason, count(*) AS count FROM quarantine GROUP BY 1, 2 ORDER BY 3 DESC")
    if who.sources:
        frame = frame[frame["source"].isin(who.sources)]
    rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
    return QuarantineSummaryOut(total=int(frame["count"].sum()), by_reason=rows)


@router.get("/rows", response_model=QuarantineRowsOut, summary="Quarantined rows (reason required)",
            responses=errors(400))
def rows(who: Analyst, svc: Svc, store: Reader, ctx: Ctx,
         reason: Annotated[str | None, Header(alias="X-Access-Reason", max_length=500)] = None,
         source: Annotated[str | None, Query(max_length=200)] = None,
         limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> QuarantineRowsOut:
    """Raw rejected rows: they may hold personal data, so a reason is required and audited."""
    if not reason or len(reason.strip()) < 5:
        raise HTTPException(400, "state why you need raw quarantined rows in the X-Access-Reason header")
    if who.sources and source not in who.sources:
        raise HTTPException(403, "source not permitted for this user")
    frame = store.quarantine(source=source, limit=limit)
    svc.audit.record(ctx, "person.read", "ok", object_id=f"quarantine/{source or '*'}", reason=reason,
                     detail=f"{len(frame)} rows")
    return QuarantineRowsOut(rows=json.loads(frame.to_json(orient="records")))
