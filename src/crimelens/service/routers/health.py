"""Health: ``GET /api/v1/health`` (anonymous liveness, kept for existing clients) and the probes
``GET /livez`` (the process answers) and ``GET /readyz`` (the store answers a query).

The probes sit outside ``/api/v1`` (as orchestrators expect them) and are anonymous; a failed
readiness check says which check failed, never why (the reason goes to the server log).
"""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from crimelens import __version__
from crimelens.service.deps import Svc
from crimelens.service.schemas import HealthOut

router = APIRouter(tags=["health"])
#: The probes, included without the API prefix.
probes = APIRouter(tags=["health"], include_in_schema=False)
log = logging.getLogger("crimelens.service.health")


@router.get("/health", response_model=HealthOut, summary="Liveness (anonymous)")
def health() -> HealthOut:
    """The service is up."""
    return HealthOut(version=__version__)


@probes.get("/livez")
def livez() -> dict[str, str]:
    """Liveness: the process serves requests (no dependency is checked, so a slow store never gets
    the process restarted)."""
    return {"status": "ok", "version": __version__}


@probes.get("/readyz")
def readyz(svc: Svc) -> JSONResponse:
    """Readiness: the store answers a query on a read connection (200), else 503."""
    started = time.perf_counter()
    checks: dict[str, str] = {}
    try:
        if svc.rt.closed:
            raise RuntimeError("runtime closed")
        svc.rt.query("SELECT count(*) FROM (SELECT 1 FROM incidents LIMIT 1) t")
        checks["store"] = "ok"
    except Exception as exc:  # noqa: BLE001 -- any failure means not ready; the type goes to the log only
        log.warning("readiness: store check failed (%s)", type(exc).__name__)
        checks["store"] = "failed"
    ready = all(v == "ok" for v in checks.values())
    body = {"status": "ready" if ready else "not ready", "checks": checks,
            "seconds": round(time.perf_counter() - started, 4)}
    return JSONResponse(body, status_code=200 if ready else 503)
