"""``GET /events``: the live feed (Server-Sent Events) of new incidents and alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from crimelens.service.deps import Svc, Viewer
from crimelens.service.live import stream
from crimelens.service.schemas import errors

router = APIRouter(tags=["events"], responses=errors(401, 403))


@router.get("/events", summary="Live feed (text/event-stream)", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "events `incidents` (new incidents after a load) and `alert`"}})
def events(who: Viewer, request: Request, svc: Svc,
           last_event_id: Annotated[int | None, Header(alias="Last-Event-ID")] = None,
           max_events: Annotated[int | None, Query(ge=1, le=10_000, description="close after this many")] = None,
           heartbeat_s: Annotated[float, Query(ge=0.05, le=60)] = 15.0) -> StreamingResponse:
    """New incidents (source, id, time, category, area, rounded point) as they are loaded."""
    return StreamingResponse(stream(svc, who, request, last_event_id, max_events, heartbeat_s),
                             media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})
