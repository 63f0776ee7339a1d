"""The service's operations jobs: portal sync, drift check, retraining, reports, audit purge, retention.

Each method is a :data:`~crimelens.service.scheduler.JobFn`; :meth:`OpsJobs.specs` gives them with
their default cron times. The decisions are the core's: *when to retrain* is
:func:`crimelens.registry.retrain_reasons`, *when to promote* is the registry's
:class:`~crimelens.registry.PromotionRule`; these jobs only read the store, fit, and record.

* ``drift-check`` (daily 05:00): PSI of the last week against the production model's training
  reference, and the production configuration's hit rate on the latest week. PSI above its band,
  the score below the production baseline for two checks running, or a changed incident schema
  ask for ``retrain`` (with the reason).
* ``retrain`` (Mondays 01:00, and on request): fits a new candidate on the data up to now
  (erased incidents excluded), scores it (rolling backtest + bias audit), registers it, and lets
  the promotion rule decide, comparing it with production's configuration rescored on the same
  backtest windows (production's own manifest score was measured on older weeks). A scheduled
  run skips when production is younger than the policy's ``max_age_days`` and nothing else asks
  for it.
* ``reports`` (Mondays 07:00): publishes the CompStat table and the production model's forecast,
  which names the model version it came from.
* ``audit-purge`` (daily 03:00) and ``retention`` (daily 03:30): the audit log's and the personal
  data's retention periods.
* ``portal-sync`` (hourly): calls the configured sync function (none by default: it reports so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from crimelens.filters import IncidentFilter
from crimelens.forecast import make
from crimelens.forecast.persistence import load_model
from crimelens.governance.drift import incident_drift
from crimelens.governance.retention import RetentionPolicy
from crimelens.registry import ModelRegistry, ModelState, PromotionRule, RetrainPolicy, retrain_reasons
from crimelens.registry import schema_fingerprint as fingerprint
from crimelens.registry.fitted import forecast_name, register_forecaster, score_forecaster
from crimelens.service import metrics as service_metrics
from crimelens.service import products
from crimelens.service.audit import AuditContext, AuditLog
from crimelens.service.erasure import Eraser, training_exclusions
from crimelens.service.runtime import Runtime
from crimelens.service.scheduler import JobContext, JobSpec

COLUMNS = ["source", "incident_id", "occurred_at", "time_precision", "x", "y", "category", "crs", "district"]
CRONS = {"portal-sync": "0 * * * *", "audit-purge": "0 3 * * *", "retention": "30 3 * * *",
         "drift-check": "0 5 * * *", "retrain": "0 1 * * mon", "reports": "0 7 * * mon"}


@dataclass(frozen=True, slots=True)
class OpsConfig:
    """What the jobs fit, watch and keep."""

    model: str = "retro_count"
    cell_m: float = 250.0
    horizon: str = "7d"
    coverage: float = 0.05
    groups: str = "district"
    training_days: int = 365
    current_days: int = 7
    reference_days: int = 28
    policy: RetrainPolicy = field(default_factory=RetrainPolicy)
    rule: PromotionRule = field(default_factory=PromotionRule)
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)


class OpsJobs:
    """The job functions over one runtime and registry."""

    def __init__(self, rt: Runtime, registry: ModelRegistry, config: OpsConfig | None = None, *,
                 portal_sync: Callable[[datetime], dict[str, Any]] | None = None) -> None:
        self.rt, self.registry, self.cfg = rt, registry, config or OpsConfig()
        self.portal_sync_fn = portal_sync
        self.name = forecast_name(self.cfg.model)

    def specs(self, crons: dict[str, str] | None = None) -> list[JobSpec]:
        """The jobs in run order within one tick (sync first, so checks see the new data)."""
        c = {**CRONS, **(crons or {})}
        fns = {"portal-sync": self.portal_sync, "audit-purge": self.audit_purge, "retention": self.retention_job,
               "drift-check": self.drift_check, "retrain": self.retrain, "reports": self.reports}
        return [JobSpec(n, c[n], fns[n], (fns[n].__doc__ or "").splitlines()[0]) for n in fns]

    # -- data ------------------------------------------------------------------------------
    def frame(self, start: datetime | None, end: datetime) -> pd.DataFrame:
        """Located incidents in ``[start, end)``, erased ones left out."""
        flt = IncidentFilter(start=start, end=end, located=True)
        got: pd.DataFrame = self.rt.reader().incidents(flt, columns=COLUMNS)
        gone = training_exclusions(self.rt)
        if gone and len(got):
            keys = pd.Series(list(zip(got["source"], got["incident_id"], strict=True)), index=got.index)
            got = got[~keys.isin(gone)]
        return got[got["x"].notna() & got["y"].notna()]

    def schema(self) -> str:
        """Fingerprint of the incident table's columns."""
        rows = self.rt.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'incidents' "
                             "AND table_schema = current_schema()")
        return fingerprint(str(r[0]) for r in rows)

    def _production(self) -> Any:
        return self.registry.get(self.name) if "production" in self.registry.aliases(self.name) else None

    def _params(self) -> dict[str, Any]:
        return {"cell_size": self.cfg.cell_m}

    # -- jobs ------------------------------------------------------------------------------
    def portal_sync(self, ctx: JobContext) -> dict[str, Any]:
        """Fetch new records from the configured portals."""
        if self.portal_sync_fn is None:
            return {"portals": 0, "note": "no portal sync configured"}
        out = self.portal_sync_fn(ctx.now)
        self.rt.bump()
        return out

    def audit_purge(self, ctx: JobContext) -> dict[str, Any]:
        """Remove audit rows past the audit retention period."""
        return {"removed": AuditLog(self.rt).purge(AuditContext(username="scheduler"))}

    def retention_job(self, ctx: JobContext) -> dict[str, Any]:
        """Remove personal data past its retention period."""
        out = Eraser(self.rt).enforce(self.cfg.retention, actor="scheduler")
        return {k: out[k] for k in ("fields", "incidents", "by_role")}

    def drift_check(self, ctx: JobContext) -> dict[str, Any]:
        """Watch the data and the production model; ask for a retrain on drift."""
        prod = self._production()
        if prod is None:
            ctx.request("retrain", "no production version")
            return {"status": "no production version", "triggered": ["no production version"]}
        cur_start = ctx.now - timedelta(days=self.cfg.current_days)
        trained_end = pd.Timestamp(prod.training_window["end"]).to_pydatetime()
        ref = self.frame(trained_end - timedelta(days=self.cfg.reference_days), trained_end)
        cur = self.frame(cur_start, ctx.now)
        report = incident_drift(ref, cur)
        metric = self.cfg.rule.metric
        history = self.frame(ctx.now - timedelta(days=self.cfg.training_days), ctx.now)
        score = score_forecaster(self.cfg.model, history, until=pd.Timestamp(ctx.now), params=self._params(),
                                 horizon=self.cfg.horizon, folds=1, coverage=self.cfg.coverage, groups=None)
        value = score.metrics.get(metric)
        since = pd.Timestamp(prod.created_at)
        earlier = [r["result"]["score"] for r in ctx.scheduler.history("drift-check", limit=20)
                   if r["outcome"] == "ok" and r["result"] and r["result"].get("version") == prod.version
                   and r["result"].get("score") is not None and pd.Timestamp(r["started_at"]) >= since]
        state = ModelState(trained_at=since.to_pydatetime(), baseline=prod.metrics.get(metric),
                           recent_scores=[*earlier, value] if value is not None else earlier,
                           drift_alerts=report.flagged("alert"), schema_fingerprint=self.schema(),
                           trained_schema=prod.extra.get("schema"))
        reasons = [r for r in retrain_reasons(state, ctx.now, self.cfg.policy) if not r.startswith("schedule")]
        if reasons:
            ctx.request("retrain", "; ".join(reasons))
        return {"version": prod.version, "status": report.status, "psi_alert": report.flagged("alert"),
                "score": value, "baseline": prod.metrics.get(metric), "triggered": reasons,
                "n_current": len(cur), "n_reference": len(ref)}

    def retrain(self, ctx: JobContext) -> dict[str, Any]:
        """Fit, score and register a candidate; promote it when the rule allows."""
        prod = self._production()
        if ctx.reason == "schedule" and prod is not None:
            state = ModelState(trained_at=pd.Timestamp(prod.created_at).to_pydatetime())
            due = retrain_reasons(state, ctx.now, self.cfg.policy)
            if not due:
                age = (ctx.now - state.trained_at).total_seconds() / 86400 if state.trained_at else 0
                return {"skipped": True, "note": f"production {prod.version} is {age:.1f} days old"}
            reason = "; ".join(due)
        else:
            reason = ctx.reason
        frame = self.frame(ctx.now - timedelta(days=self.cfg.training_days), ctx.now)
        est = make(self.cfg.model, horizon=self.cfg.horizon, **self._params()).fit(frame, until=ctx.now)
        scored = score_forecaster(self.cfg.model, frame, until=pd.Timestamp(ctx.now), params=self._params(),
                                  horizon=self.cfg.horizon, coverage=self.cfg.coverage, groups=self.cfg.groups)
        m = register_forecaster(self.registry, est, frame, scored=scored, reason=reason, by="scheduler",
                                at=ctx.now, extra={"schema": self.schema()})
        rescored = None
        if prod is not None:  # production's configuration on the candidate's windows: a like-for-like test
            params = {k: v for k, v in prod.params.items() if k != "horizon"}
            rescored = score_forecaster(self.cfg.model, frame, until=pd.Timestamp(ctx.now), params=params,
                                        horizon=self.cfg.horizon, coverage=self.cfg.coverage, groups=None).metrics
        decision = self.registry.promote(self.name, m.version, rule=self.cfg.rule, by="scheduler",
                                         production_metrics=rescored)
        for k, v in m.metrics.items():
            service_metrics.model_scored(self.name, m.version, k, v)
        return {"version": m.version, "parent": m.parent, "reason": reason, "metrics": m.metrics,
                "audit": m.bias_audit.get("status"), "promoted": decision.promote, "decision": decision.reasons}

    def reports(self, ctx: JobContext) -> dict[str, Any]:
        """Publish the CompStat table and the production forecast (naming its model version)."""
        store = self.rt.reader()
        table = products.compstat(store, IncidentFilter())
        out: dict[str, Any] = {"compstat_rows": len(table.get("rows", []))}
        prod = self._production()
        with self.rt.transaction() as tx:
            products.publish(tx, "report", "compstat-weekly", table, at=ctx.now)
            if prod is not None:
                model, _ = load_model(self.registry.artifact(prod))
                frame = self.frame(ctx.now - timedelta(days=self.cfg.training_days), ctx.now)
                model.fit(frame, until=ctx.now)
                geo = model.predict(horizon=self.cfg.horizon).to_geojson(top=200)
                geo["parameters"] = {**geo.get("metadata", {}), "model_name": prod.name,
                                     "model_version": prod.version, "refit_until": ctx.now.isoformat()}
                products.publish(tx, "forecast", self.cfg.model, geo, at=ctx.now)
                out.update(forecast_version=prod.version, cells=len(geo.get("features", [])))
        return out


def start_operations(rt: Runtime, settings: Any) -> Any:
    """Start the scheduled jobs when ``settings.jobs_enabled`` (in one worker only); returns the
    started :class:`~crimelens.service.scheduler.Scheduler` or None."""
    import logging

    from crimelens.service.erasure import load_policy
    from crimelens.service.scheduler import Scheduler, admin_alert

    log = logging.getLogger("crimelens.service.scheduler")
    if not settings.jobs_enabled:
        log.info("scheduled jobs off (CRIMELENS_JOBS_ENABLED is false)")
        return None
    if not rt.try_leader("ops-scheduler"):
        log.info("scheduled jobs run in another worker")
        return None
    jobs = OpsJobs(rt, ModelRegistry(settings.registry_dir), OpsConfig(retention=load_policy(settings.retention_file)))
    admins = [a.strip() for a in str(settings.jobs_admin_email).split(",") if a.strip()]
    sched = Scheduler(rt, jobs.specs(), timezone=settings.schedule_timezone, alert=admin_alert(rt, admins))
    sched.start()
    log.info("scheduled jobs started: %s", ", ".join(s.name for s in jobs.specs()))
    return sched
