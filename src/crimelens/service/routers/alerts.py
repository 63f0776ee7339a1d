"""``/alerts`` and ``/alert-rules``: list, inspect, acknowledge and resolve alerts, precision, rules, scan."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from crimelens.alerts.model import Alert
from crimelens.filters import IncidentFilter
from crimelens.service import records
from crimelens.service.alert_schemas import (
    AckIn,
    AlertDetailOut,
    AlertOut,
    AlertPage,
    PrecisionOut,
    PrecisionRowOut,
    ResolveIn,
    RuleBookIn,
    RuleBookOut,
    ScanIn,
    ScanOut,
)
from crimelens.service.auth import Principal
from crimelens.service.deps import Admin, Analyst, Ctx, Reader, Svc, Viewer
from crimelens.service.schemas import IncidentOut, errors

router = APIRouter(tags=["alerts"], responses=errors(401, 403))
AlertId = Annotated[str, Path(min_length=6, max_length=64, pattern=r"^[0-9a-f]+$",
                              description="alert id (or a unique prefix of 6+ characters)")]
Status = Literal["open", "acknowledged", "resolved"]


def _view(alert: Alert, who: Principal) -> dict[str, Any]:
    """The alert as JSON, with incident keys limited to the sources the caller may see."""
    d = alert.to_dict()
    if who.sources:
        d["incident_ids"] = [k for k in d["incident_ids"] if k.split(":", 1)[0] in who.sources]
    return d


def _found(alert: Alert | None) -> Alert:
    if alert is None:
        raise HTTPException(404, "no such alert")
    return alert


@router.get("/alerts", response_model=AlertPage, summary="Alerts, newest first")
def list_alerts(who: Viewer, svc: Svc, status: Status | None = None,
                area: Annotated[list[str], Query(max_length=50, examples=["011"])] = [],  # noqa: B006
                category: Annotated[list[str], Query(max_length=50, examples=["burglary"])] = [],  # noqa: B006
                start: Annotated[date | None, Query(alias="from", description="windows ending after this day")] = None,
                end: Annotated[date | None, Query(alias="to", description="windows starting before this day")] = None,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0) -> AlertPage:
    """Filter by status, area, category and window dates; page with ``limit`` and ``offset``."""
    items, total = svc.alerts.page(status=status, areas=area, categories=category, start=start, end=end,
                                   limit=limit, offset=offset)
    return AlertPage(items=[AlertOut(**_view(a, who)) for a in items], total=total, limit=limit, offset=offset)


@router.get("/alerts/precision", response_model=PrecisionOut, summary="Precision over time from feedback")
def precision(_: Viewer, svc: Svc, period: Literal["week", "month", "quarter", "year"] = "month",
              by: Literal["kind", "method", "rule", "category"] | None = None) -> PrecisionOut:
    """Share of resolved alerts labelled a real problem, per period of creation (95 % Wilson interval)."""
    frame = svc.alerts.precision(period, by)
    rows = [PrecisionRowOut(**{str(k): v for k, v in r.items()}, group=str(r[by]) if by else None)
            for r in frame.assign(period=frame["period"].astype(str)).to_dict("records")]
    n, true = sum(r.labelled for r in rows), sum(r.true for r in rows)
    return PrecisionOut(period=period, by=by, rows=rows, labelled=n, precision=true / n if n else None)


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, summary="One alert with its incidents",
            responses=errors(404))
def get_alert(alert_id: AlertId, who: Viewer, svc: Svc, store: Reader, ctx: Ctx) -> AlertDetailOut:
    """The alert and the incidents behind it (standard fields as the caller's role may read them)."""
    alert = _found(svc.alerts.get(alert_id))
    rows = records.many(store, alert.incident_ids, who)
    svc.audit.record(ctx, "alert.read", "ok", object_id=alert.alert_id, detail=f"{len(rows)} incidents")
    return AlertDetailOut(**_view(alert, who), incidents=[IncidentOut(**r) for r in rows], incidents_shown=len(rows))


@router.post("/alerts/{alert_id}/ack", response_model=AlertOut, summary="Acknowledge an alert",
             responses=errors(404))
def acknowledge(alert_id: AlertId, who: Analyst, svc: Svc, ctx: Ctx, body: AckIn | None = None) -> AlertOut:
    """Mark the alert acknowledged (audited; the live feed is told)."""
    note = body.note if body else None
    alert = _found(svc.alerts.set_status(alert_id, resolve=False, label=None, note=note, username=who.username))
    svc.audit.record(ctx, "alert.ack", "ok", object_id=alert.alert_id)
    return AlertOut(**_view(alert, who))


@router.post("/alerts/{alert_id}/resolve", response_model=AlertOut, summary="Resolve with true/false-alarm feedback",
             responses=errors(404))
def resolve(alert_id: AlertId, body: ResolveIn, who: Analyst, svc: Svc, ctx: Ctx) -> AlertOut:
    """Resolve the alert; the label feeds the precision report (audited)."""
    alert = _found(svc.alerts.set_status(alert_id, resolve=True, label=body.label, note=body.note,
                                         username=who.username))
    svc.audit.record(ctx, "alert.resolve", "ok", object_id=alert.alert_id, detail=f"label={body.label}")
    return AlertOut(**_view(alert, who))


@router.post("/alerts/scan", response_model=ScanOut, summary="Run a full alert scan now")
def scan(who: Analyst, svc: Svc, ctx: Ctx, body: ScanIn | None = None) -> ScanOut:
    """Scan every area × category (and the rules); new alerts are stored, delivered and published."""
    flt = IncidentFilter(categories=tuple(body.categories)) if body and body.categories else None
    if flt is not None:
        flt.category_names()  # unknown names -> 422
    res = svc.alerts.scan(end=body.end if body else None, flt=flt)
    svc.audit.record(ctx, "alert.scan", "ok", detail=f"{len(res.new)} new, {len(res.updated)} updated")
    return ScanOut(new=len(res.new), updated=len(res.updated), suppressed=res.suppressed, seconds=res.seconds,
                   alerts=[AlertOut(**_view(a, who)) for a in res.alerts])


@router.get("/alert-rules", response_model=RuleBookOut, summary="The alert rule book")
def get_rules(_: Admin, svc: Svc) -> RuleBookOut:
    """Rules, subscriptions and cool-down in use (from the API, the rules file, or none)."""
    return RuleBookOut(**svc.alerts.rules())


@router.put("/alert-rules", response_model=RuleBookOut, summary="Replace the alert rule book")
def put_rules(body: RuleBookIn, _: Admin, svc: Svc, ctx: Ctx) -> RuleBookOut:
    """Validate and store a rule book; an invalid one is refused with 422 and nothing changes (audited)."""
    out = svc.alerts.set_rules(body.model_dump())
    svc.audit.record(ctx, "alert.rules_update", "ok",
                     detail=f"{len(out['rules'])} rules, {len(out['subscriptions'])} subscriptions")
    return RuleBookOut(**out)
