"""The application factory: ``create_app(settings)`` → a FastAPI app with the API and dashboard.

The app owns one :class:`~crimelens.service.runtime.Runtime` (the store's single writer).
Errors are answered with generic bodies (SEC-19): our own input errors say what was wrong,
anything unexpected says only "internal error" and a request id, and the details go to the
server log. Every ``/api`` response carries ``Cache-Control: no-store`` (SEC-20).
"""

from __future__ import annotations

import logging
import re
import traceback
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crimelens import __version__
from crimelens.exceptions import InputError, StoreBusyError
from crimelens.service.alerting import Alerting
from crimelens.service.audit import AuditLog, escape_control
from crimelens.service.auth import Accounts, AuthError
from crimelens.service.deps import Service
from crimelens.service.jobs import Jobs
from crimelens.service.ratelimit import RateLimited, RateLimiter
from crimelens.service.routers import (
    aggregates,
    alerts,
    areas,
    audit,
    auth,
    drilldown,
    events,
    fairness,
    feeds,
    forecasts,
    health,
    hotspots,
    incidents,
    ingest,
    jobs,
    models,
    patrol,
    public,
    quarantine,
    users,
)
from crimelens.service.runtime import Clock, Runtime, utcnow
from crimelens.settings import Settings

log = logging.getLogger("crimelens.service")
API = "/api/v1"
ROUTERS = (health, auth, incidents, aggregates, hotspots, forecasts, models, quarantine, ingest, jobs, users,
           audit, events, alerts, public, fairness, drilldown, areas, patrol, feeds)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class _EscapeControl(logging.Filter):
    """AUD-06: control characters in log messages are escaped, so a log line stays one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = escape_control(record.getMessage(), 4000)
        record.args = None
        return True


class Headers:
    """ASGI middleware: request id, no-store on API responses, security headers, and a last-resort
    500 that reveals nothing (the log gets the exception type and code locations, never its message,
    which may hold data)."""

    def __init__(self, app: ASGIApp, csp: str) -> None:
        self.app, self.csp = app, csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        api = scope["path"].startswith("/api/")
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                h = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
                h += [(b"x-request-id", rid.encode()), (b"x-content-type-options", b"nosniff"),
                      (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                      (b"content-security-policy", self.csp.encode())]
                static = scope["path"].startswith("/static/")
                h.append((b"cache-control", b"public, max-age=3600" if static and not api else b"no-store"))
                message["headers"] = h
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # noqa: BLE001 -- last resort: generic 500, log without the message (SEC-19, AUD-06)
            where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}"
                                for f in reversed(traceback.extract_tb(exc.__traceback__)[-6:]))
            log.error("request %s failed: %s at %s", rid, type(exc).__name__, where)
            if not started:
                body = JSONResponse({"detail": "internal error", "request_id": rid}, status_code=500)
                await body(scope, receive, send_with_headers)


def _error(request: Request, status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"detail": detail, "request_id": getattr(request.state, "request_id", None)}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_errors(app: FastAPI) -> None:
    async def on_input(request: Request, exc: Exception) -> JSONResponse:
        msg = str(exc).splitlines()[0] if str(exc) else "invalid input"
        return _error(request, 422, [{"loc": ["request"], "msg": msg[:300], "type": "value_error"}])

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        errs = exc.errors() if isinstance(exc, RequestValidationError) else []
        # never echo the input back (it may hold a password): location, message and type only
        return _error(request, 422, [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:300],
                                      "type": str(e.get("type", ""))} for e in errs])

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 422 and isinstance(exc.detail, str):
            return await on_input(request, InputError(exc.detail))
        return _error(request, exc.status_code, exc.detail, dict(exc.headers or {}))

    async def on_auth(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, getattr(exc, "status", 401), str(exc))

    async def on_forbidden(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, 403, "forbidden")

    async def on_rate(request: Request, exc: Exception) -> JSONResponse:
        retry = str(getattr(exc, "retry_after", 60))
        return _error(request, 429, "too many requests", {"Retry-After": retry})

    async def on_busy(request: Request, exc: Exception) -> JSONResponse:
        return _error(request, 503, "store busy; try again shortly", {"Retry-After": "5"})

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(AuthError, on_auth)
    app.add_exception_handler(InputError, on_input)
    app.add_exception_handler(StoreBusyError, on_busy)
    app.add_exception_handler(PermissionError, on_forbidden)
    app.add_exception_handler(RateLimited, on_rate)


def api_routes() -> list[tuple[str, APIRoute]]:
    """Every API route with its full path (for introspection tests and docs)."""
    return [(API + r.path, r) for m in ROUTERS for r in m.router.routes if isinstance(r, APIRoute)]


def create_app(settings: Settings, *, clock: Clock | None = None) -> FastAPI:
    """Build the service for ``settings`` (opens the store as its single writer).

    Parameters
    ----------
    settings
        The one settings object (database, session and lockout limits, TLS, tile URL...).
    clock
        Returns the current UTC time; tests pass a controllable clock (SEC-03).
    """
    from crimelens.service import dashboard, logging_json
    from crimelens.service import metrics as ops_metrics

    logging.getLogger("crimelens.service").addFilter(_EscapeControl())
    rt = Runtime(settings, clock=clock or utcnow)
    try:
        alerting = Alerting(rt)
    except BaseException:
        rt.close()
        raise
    svc = Service(rt, Accounts(rt), AuditLog(rt), Jobs(rt), RateLimiter(rt.clock, {
        "login": settings.rate_login_per_minute, "search": settings.rate_search_per_minute,
        "export": settings.rate_export_per_minute, "public": settings.rate_public_per_minute}), alerting)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logs = logging_json.LogSettings()
        if logs.format == "json":  # after uvicorn set up its loggers, so its access log is formatted too
            logging_json.configure(getattr(logging, logs.level.upper()))
        metrics_port = ops_metrics.lifespan_start(app)
        svc.alerts.start()
        from crimelens.service.batchfeed import BatchListener
        from crimelens.service.ops_jobs import start_operations

        batches = BatchListener(svc)  # loads committed by other processes reach this one's live feed
        batches.start()
        from crimelens.service.instream import ServiceStream

        consumer = ServiceStream.start_if(svc, getattr(app.state, "stream_spec", None))  # serve --stream

        app.state.ops_scheduler = start_operations(rt, settings)  # docs/operations.md
        yield
        if metrics_port is not None:
            metrics_port.shutdown()
        if app.state.ops_scheduler is not None:
            app.state.ops_scheduler.stop()
        if consumer is not None:
            consumer.stop()
        batches.stop()
        svc.alerts.stop()
        svc.jobs.stop()
        rt.close()

    app = FastAPI(
        title="crimelens API", version=__version__, lifespan=lifespan,
        openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None,
        description="Incidents, aggregates, hot spots, forecasts, alerts and administration. Authenticate with "
                    "`POST /api/v1/auth/login` and send `Authorization: Bearer <token>`.",
    )
    app.state.svc = svc
    for module in ROUTERS:
        app.include_router(module.router, prefix=API)
    app.include_router(health.probes)  # /livez, /readyz
    dashboard.mount(app, settings)
    _install_errors(app)
    app.add_middleware(Headers, csp=dashboard.csp(settings))
    ops_metrics.install(app, rt)  # outermost: counts every response, the 500s of Headers included
    return app
