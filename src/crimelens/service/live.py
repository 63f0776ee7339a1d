"""The live feed as Server-Sent Events (WHATWG HTML §9.2): ``id``, ``event`` and JSON ``data``.

Each subscriber gets an asyncio queue on the :class:`~crimelens.service.runtime.EventBus`;
``Last-Event-ID`` replays retained events after a reconnect; a comment line is sent as a
heartbeat so proxies keep the connection and dead clients are noticed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import Request

from crimelens.service.auth import Principal

if TYPE_CHECKING:
    from crimelens.service.deps import Service


def frame(event: dict[str, Any]) -> str:
    """One SSE frame."""
    return f"id: {event['id']}\nevent: {event['event']}\ndata: {json.dumps(event['data'], default=str)}\n\n"


def _visible(event: dict[str, Any], who: Principal) -> dict[str, Any] | None:
    if not who.sources or event["event"] not in ("incidents", "alert"):
        return event
    if event["event"] == "alert":  # a scoped user sees alerts involving their sources, with their incidents only
        alert = event["data"]["alert"]
        ids = [k for k in alert.get("incident_ids", []) if str(k).split(":", 1)[0] in who.sources]
        return {**event, "data": {**event["data"], "alert": {**alert, "incident_ids": ids}}} if ids else None
    data = event["data"]
    items = [i for i in data.get("items", []) if i.get("source") in who.sources]
    ids = data.get("incident_ids", []) if data.get("source") in who.sources else []
    return {**event, "data": {**data, "items": items, "incident_ids": ids}} if items or ids else None


async def stream(svc: Service, who: Principal, request: Request, last_id: int | None, max_events: int | None,
                 heartbeat_s: float) -> AsyncIterator[str]:
    """Yield SSE frames until the client goes away (or ``max_events`` were sent)."""
    queue, backlog = svc.rt.events.subscribe(last_id)
    sent = 0
    try:
        yield "retry: 3000\n: connected\n\n"
        pending = list(backlog)
        while max_events is None or sent < max_events:
            if pending:
                event: dict[str, Any] | None = pending.pop(0)
            else:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=heartbeat_s)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": heartbeat\n\n"
                    continue
            shown = _visible(event, who) if event is not None else None
            if shown is not None:
                yield frame(shown)
                sent += 1
    finally:
        svc.rt.events.unsubscribe(queue)
