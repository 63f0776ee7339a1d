"""FastAPI dependencies: the service container, the caller, role checks, filters, rate limits.

Every data route depends on :class:`Require` with its role (SEC-09); the role and the owner of
anything created are taken from the session, never from the request body (SEC-12).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, cast

from fastapi import Depends, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from crimelens.filters import IncidentFilter
from crimelens.schema import AREA_COLUMNS
from crimelens.service.alerting import Alerting
from crimelens.service.audit import AuditContext, AuditLog
from crimelens.service.auth import Accounts, AuthError, Principal, Role
from crimelens.service.jobs import Jobs
from crimelens.service.ratelimit import RateLimiter
from crimelens.service.records import scoped
from crimelens.service.runtime import Runtime
from crimelens.store.duckdb import DuckDBStore


@dataclass
class Service:
    """Everything a route may use."""

    rt: Runtime
    accounts: Accounts
    audit: AuditLog
    jobs: Jobs
    limiter: RateLimiter
    alerts: Alerting


async def service(request: Request) -> Service:
    """The app's service container."""
    svc: Service = request.app.state.svc
    return svc


Svc = Annotated[Service, Depends(service)]
_bearer = HTTPBearer(auto_error=False, description="Session token from POST /api/v1/auth/login")


async def principal(
    request: Request, svc: Svc, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The authenticated caller; 401 without a valid, live session token.

    The common case (a live session in memory) is answered on the event loop; anything that
    needs the database goes to the thread pool.
    """
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "not authenticated", headers={"WWW-Authenticate": "Bearer"})
    try:
        cached = svc.accounts.resolve_cached(creds.credentials)
        who: Principal = cached if cached is not None else await run_in_threadpool(
            svc.accounts.resolve, creds.credentials)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    request.state.username = who.username
    return who


class Require:
    """Dependency: the caller must hold at least ``role`` (403 otherwise)."""

    def __init__(self, role: Role) -> None:
        self.required_role = role

    async def __call__(self, who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role < self.required_role:
            raise HTTPException(403, "forbidden")
        return who


Viewer = Annotated[Principal, Depends(Require(Role.viewer))]
Analyst = Annotated[Principal, Depends(Require(Role.analyst))]
Admin = Annotated[Principal, Depends(Require(Role.admin))]


async def audit_context(request: Request) -> AuditContext:
    """Who and where, for audit rows."""
    return AuditContext(getattr(request.state, "username", None),
                        request.client.host if request.client else None,
                        getattr(request.state, "request_id", None))


Ctx = Annotated[AuditContext, Depends(audit_context)]


async def reader(svc: Svc) -> AsyncIterator[DuckDBStore]:
    """A read view of the store for this request (pooled; never shared by two requests at once).

    On PostgreSQL an idle pooled connection is taken on the event loop; otherwise the wait (up to
    the pool's timeout, then 503) happens in a worker thread: waiting on the event loop would stall
    the very requests whose end gives a connection back — every request of the process until the
    timeout.
    """
    if not svc.rt.postgres:
        with svc.rt.lease() as view:
            yield view
        return
    pool = svc.rt.pg_views
    pg = pool.try_acquire()
    if pg is None:
        pg = await run_in_threadpool(pool.acquire)
    try:
        yield cast(DuckDBStore, pg)  # routes use the one store interface of both backends
    except BaseException as exc:
        pool.release(pg, exc)
        raise
    pool.release(pg)


Reader = Annotated[DuckDBStore, Depends(reader)]


def midnight(d: date | None) -> datetime | None:
    """The UTC midnight starting day ``d``."""
    return None if d is None else datetime(d.year, d.month, d.day, tzinfo=UTC)


async def incident_filter(
    who: Viewer,
    start: Annotated[date | None, Query(alias="from", description="first day (inclusive, UTC)")] = None,
    end: Annotated[date | None, Query(alias="to", description="last day (exclusive, UTC)")] = None,
    category: Annotated[list[str], Query(max_length=50, description="category, roll-up or group")] = [],  # noqa: B006
    source: Annotated[list[str], Query(max_length=50)] = [],  # noqa: B006
    area: Annotated[list[str], Query(max_length=50, description="area filter as column:value, e.g. district:004",
                                     examples=["district:004"])] = [],  # noqa: B006
    include_non_crime: bool = False,
) -> IncidentFilter:
    """The shared incident filter from query parameters, limited to the caller's sources."""
    areas: dict[str, tuple[str, ...]] = {}
    for item in area:
        col, sep, val = item.partition(":")
        if not sep or col not in AREA_COLUMNS:
            raise HTTPException(422, f"area must be column:value with column in {', '.join(AREA_COLUMNS)}")
        areas[col] = (*areas.get(col, ()), val)
    flt = IncidentFilter(start=midnight(start), end=midnight(end), categories=tuple(category),
                         sources=tuple(source), areas=areas, include_non_crime=include_non_crime)
    flt.category_names()  # unknown names -> InputError -> 422
    return scoped(flt, who)


Filter = Annotated[IncidentFilter, Depends(incident_filter)]


async def cached_json(svc: Service, key: Hashable, model: type[BaseModel],
                      compute: Callable[[], dict[str, Any]], *, inline: bool = False) -> Response:
    """A read-only product as JSON, validated by ``model`` and serialised once per data generation.

    Cache hits are answered on the event loop without a worker thread, validation or encoding;
    so are misses with ``inline`` (a product the counts rollup answers in a few milliseconds,
    cheaper than a thread hand-off); other misses are computed in a worker thread.
    """
    def build() -> bytes:
        return model(**compute()).model_dump_json(by_alias=True).encode()

    body: bytes = svc.rt.cached(key, build) if inline else await svc.rt.acached(key, build)
    return Response(body, media_type="application/json")


class Limit:
    """Dependency: count one request against a per-user (or per-address) rate limit bucket."""

    def __init__(self, bucket: str, per: str = "user") -> None:
        self.bucket, self.per = bucket, per

    async def __call__(self, request: Request, svc: Svc) -> None:
        key = getattr(request.state, "username", None) if self.per == "user" else None
        key = key or (request.client.host if request.client else "unknown")
        svc.limiter.hit(self.bucket, key)
