"""Prometheus metrics for operators: ``GET /metrics`` in the text exposition format.

Every name starts with ``crimelens_``; counters end in ``_total`` and durations are ``_seconds``
histograms. Two kinds of series:

* **counted in the process** (:class:`Metrics`): HTTP requests by route *template* and status
  (``/api/v1/incidents/{source}/{incident_id}``, never the filled-in path, so no identifier or
  query string reaches a label), request durations, job runs and failures
  (:meth:`Metrics.observe_job`, for the scheduler), and the model score per version
  (:meth:`Metrics.set_model_score`, a gauge the registry sets);
* **read from the store at scrape time** (:class:`StoreCollector`): ingest rows by outcome and
  quarantined rows by reason (summed over the ``files`` table, so loads made by the CLI count too),
  alerts by severity and status, and the age of the hourly rollup.

**Several workers.** With ``serve --workers N`` each process counts its own requests. Set
``PROMETHEUS_MULTIPROC_DIR`` (``serve`` creates a fresh one when N > 1) and prometheus-client
writes every process's values to files there; ``/metrics`` then merges them
(:class:`prometheus_client.multiprocess.MultiProcessCollector`), so any worker answers for all.

**Access.** ``/metrics`` on the API port needs ``Authorization: Bearer <CRIMELENS_METRICS_TOKEN>``
(compared in constant time) and answers 404 when no token is set. Alternatively
``serve --metrics-bind HOST:PORT`` (``CRIMELENS_METRICS_HOST`` / ``CRIMELENS_METRICS_PORT``) serves
it without a token on a separate address (loopback by default) that only the scraper can reach.

**Hooks for other modules.** :func:`job_finished`, :func:`model_scored` and :func:`erasure_done`
record into every app of the process (none when no app is running), so the scheduler, the
registry's service adapter and the erasure command need no handle on the app.
"""

from __future__ import annotations

import hmac
import json
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Request-duration buckets (seconds): dashboard calls are milliseconds, uploads and reports longer.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Seconds a store-derived scrape is reused (a scraper every 15 s costs one set of queries).
STORE_TTL_S = 10.0
UNMATCHED = "<unmatched>"
#: Methods kept as label values; any other (a client may send any token) counts as ``OTHER``.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


class MetricsSettings(BaseSettings):
    """Access to ``/metrics`` (environment ``CRIMELENS_METRICS_*``)."""

    model_config = SettingsConfigDict(env_prefix="CRIMELENS_METRICS_", env_file=".env", extra="ignore")

    enabled: bool = Field(default=True, description="count requests and serve /metrics (false: neither)")
    token: SecretStr | None = Field(default=None, description="bearer token for /metrics on the API port")
    port: int | None = Field(default=None, ge=1, le=65535, description="serve /metrics, tokenless, on this port")
    host: str = Field(default="127.0.0.1", description="address of the separate metrics port")


def multiprocess_dir() -> str | None:
    """The multiprocess directory when prometheus-client runs in multiprocess mode, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The series one app counts, in their own registry (so several apps in a process never clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("crimelens_http_requests_total", "HTTP requests by route template and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("crimelens_http_request_duration_seconds", "HTTP request duration by route",
                                 ["method", "route"], buckets=BUCKETS, registry=r)
        self.job_runs = Counter("crimelens_job_runs_total", "Job runs by kind and outcome",
                                ["kind", "outcome"], registry=r)
        self.job_failures = Counter("crimelens_job_failures_total", "Failed job runs by kind", ["kind"], registry=r)
        self.job_seconds = Histogram("crimelens_job_duration_seconds", "Job run duration by kind", ["kind"],
                                     buckets=(0.1, 1.0, 10.0, 60.0, 300.0, 1800.0, 7200.0), registry=r)
        self.model_score = Gauge("crimelens_model_score", "Backtest score of a model version (registry)",
                                 ["model", "version", "metric"], registry=r, multiprocess_mode="mostrecent")
        self.extra: list[Any] = []
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # labelled series, looked up once
        self.erasures = Counter("crimelens_erasures_total", "Erasure requests carried out, by kind",
                                ["kind"], registry=r)
        self.erasure_failures = Counter("crimelens_erasure_failures_total",
                                        "Erasure requests that failed and were rolled back, by kind",
                                        ["kind"], registry=r)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one finished request."""
        if method not in METHODS:
            method = "OTHER"
        key = (method, route, status)
        pair = self._children.get(key)
        if pair is None:  # labels() validates and locks: done once per series, not per request
            pair = self._children[key] = (self.requests.labels(method, route, str(status)),
                                          self.latency.labels(method, route))
        pair[0].inc()
        pair[1].observe(seconds)

    def observe_job(self, kind: str, outcome: str, seconds: float) -> None:
        """Count one job run (``outcome`` ``ok`` or ``failed``; the scheduler calls this after each run)."""
        self.job_runs.labels(kind, outcome).inc()
        self.job_seconds.labels(kind).observe(seconds)
        if outcome != "ok":
            self.job_failures.labels(kind).inc()

    def set_model_score(self, model: str, version: str, metric: str, value: float) -> None:
        """Publish the score of ``model`` at ``version`` on ``metric`` (e.g. ``hit_rate_5``)."""
        self.model_score.labels(model, version, metric).set(value)

    def add_collector(self, collector: Any) -> None:
        """Expose ``collector`` (the store's series) with this app's own."""
        self.extra.append(collector)
        if multiprocess_dir() is None:
            self.registry.register(collector)

    def exposition(self) -> bytes:
        """The text exposition: this process's series (every process's in multiprocess mode) and the
        added collectors'."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=path)  # type: ignore[no-untyped-call]  # untyped upstream
        for c in self.extra:
            merged.register(c)
        return generate_latest(merged)


#: The live :class:`Metrics` of this process (one per app; weak, so a dropped app drops out).
_LIVE: weakref.WeakSet[Metrics] = weakref.WeakSet()


def job_finished(name: str, outcome: str, seconds: float) -> None:
    """Count one run of the job ``name`` (``outcome`` ``ok`` or ``failed``) that took ``seconds``."""
    for m in list(_LIVE):
        m.observe_job(name, outcome, seconds)


def model_scored(model: str, version: str, metric: str, value: float) -> None:
    """Publish the backtest ``value`` of ``model`` at ``version`` on ``metric`` (a gauge)."""
    for m in list(_LIVE):
        m.set_model_score(model, version, metric, value)


def erasure_done(kind: str) -> None:
    """Count one erasure carried out (``kind``: ``incident``, ``person`` or ``retention``)."""
    for m in list(_LIVE):
        m.erasures.labels(kind).inc()


def erasure_failed(kind: str) -> None:
    """Count one erasure that failed and rolled back (``kind`` as in :func:`erasure_done`)."""
    for m in list(_LIVE):
        m.erasure_failures.labels(kind).inc()


Query = Callable[[str], list[tuple[Any, ...]]]


class StoreCollector:
    """Series read from the store when scraped (cached for :data:`STORE_TTL_S`).

    ``query`` runs one read statement and returns its rows, ``clock`` gives the time now and
    ``rollup_ready`` whether the rollup of the current data generation is built. The rollup age is
    the time since the newest load it reflects (the rollup is rebuilt for every data generation).
    """

    def __init__(self, query: Query, *, clock: Callable[[], datetime],
                 rollup_ready: Callable[[], bool] | None = None) -> None:
        self.query, self.clock, self.rollup_ready = query, clock, rollup_ready
        self._cache: tuple[float, tuple[list[Metric], datetime | None]] | None = None
        self._lock = threading.Lock()

    def describe(self) -> list[Metric]:
        """Nothing up front: the series are known only after a query."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The store's series."""
        with self._lock:
            if self._cache is None or time.monotonic() - self._cache[0] > STORE_TTL_S:
                self._cache = (time.monotonic(), self._read())
            families, newest = self._cache[1]
        age = GaugeMetricFamily("crimelens_rollup_age_seconds",
                                "Seconds since the newest load the hourly rollup reflects")
        if newest is not None:
            age.add_metric([], max(0.0, (self.clock() - newest).total_seconds()))
        yield from families
        yield age
        if self.rollup_ready is not None:
            ready = GaugeMetricFamily("crimelens_rollup_ready", "1 when the rollup of the current data is built")
            ready.add_metric([], 1.0 if self.rollup_ready() else 0.0)
            yield ready

    def _read(self) -> tuple[list[Metric], datetime | None]:
        rows = CounterMetricFamily("crimelens_ingest_rows", "Ingested rows by outcome", labels=["outcome"])
        reasons = CounterMetricFamily("crimelens_quarantine_rows", "Quarantined rows by reason", labels=["reason"])
        files = CounterMetricFamily("crimelens_ingest_files", "Files loaded into the store")
        outcomes = dict.fromkeys(("stored", "updated", "duplicates", "quarantined"), 0)
        by_reason: dict[str, int] = {}
        reports = self.query("SELECT report, loaded_at FROM files")
        newest: datetime | None = max((r[1] for r in reports if r[1] is not None), default=None)
        for text, _ in reports:
            rep = json.loads(text) if isinstance(text, str) else dict(text or {})
            for k in outcomes:
                outcomes[k] += int(rep.get(k) or 0)
            for reason, n in (rep.get("by_reason") or {}).items():
                by_reason[str(reason)] = by_reason.get(str(reason), 0) + int(n)
        for k, v in outcomes.items():
            rows.add_metric([k], v)
        for k, v in sorted(by_reason.items()):
            reasons.add_metric([k], v)
        files.add_metric([], len(reports))
        alerts = GaugeMetricFamily("crimelens_alerts", "Alerts held, by severity and status",
                                   labels=["severity", "status"])
        try:
            for sev, status, n in self.query("SELECT severity, status, count(*) FROM alerts GROUP BY 1, 2"):
                alerts.add_metric([str(sev), str(status)], float(n))
        except Exception:  # noqa: BLE001 -- a store without the alert tables has no alerts to report
            pass
        return [rows, reasons, files, alerts, self._erasure_attempts()], newest

    def _erasure_attempts(self) -> Metric:
        """Erasure and retention attempts from the audit log, by event and outcome: every process
        (the ``erase`` command, the retention job, any worker) writes there, failures included."""
        fam = GaugeMetricFamily("crimelens_erasure_attempts",
                                "Erasure and retention attempts in the audit log, by event and outcome",
                                labels=["event", "outcome"])
        try:
            got = self.query("SELECT event, outcome, count(*) FROM svc_audit WHERE event LIKE 'erasure.%' "
                             "OR event = 'retention.enforce' GROUP BY 1, 2")
        except Exception:  # noqa: BLE001 -- a store without the audit table has had no attempts
            got = []
        for event, outcome, n in got:
            fam.add_metric([str(event), str(outcome)], float(n))
        return fam


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded label values), or ``<unmatched>``."""
    # FastAPI's included routers record the full (prefixed) template in their route context;
    # plain Starlette routes and mounts carry it on the route itself
    context = (scope.get("fastapi") or {}).get("effective_route_context")
    route = scope.get("route")
    path = getattr(context, "path", None) or getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else UNMATCHED


class MetricsMiddleware:
    """ASGI middleware counting every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            self.metrics.observe_request(scope.get("method", "GET"), route_template(scope), status,
                                         time.perf_counter() - started)


def authorised(request: Request, settings: MetricsSettings) -> bool:
    """Whether ``request`` carries the metrics bearer token (never when no token is configured)."""
    if settings.token is None:
        return False
    given = request.headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    expected = settings.token.get_secret_value()
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected.encode())


def metrics_response(request: Request, metrics: Metrics, settings: MetricsSettings) -> Response:
    """``/metrics``: 404 when no token is configured (use the metrics port), 401 without the token."""
    if settings.token is None:
        return Response('{"detail":"not found"}', status_code=404, media_type="application/json")
    if not authorised(request, settings):
        return Response('{"detail":"metrics token required"}', status_code=401, media_type="application/json",
                        headers={"WWW-Authenticate": "Bearer"})
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def start_metrics_server(metrics: Metrics, settings: MetricsSettings) -> Any:
    """Serve the exposition without a token on ``settings.host:settings.port`` (a daemon thread);
    returns the server (call ``shutdown()`` to stop it)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics.exposition()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # scrapes are not worth a log line each

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def shutdown(self) -> None:
            super().shutdown()
            self.server_close()

    assert settings.port is not None
    server = Server((settings.host, settings.port), Handler)
    threading.Thread(target=server.serve_forever, name="crimelens-metrics", daemon=True).start()
    return server


def install(app: Any, rt: Any, settings: MetricsSettings | None = None) -> Metrics:
    """Count ``app``'s requests, serve ``/metrics`` on it (token) and expose the store's series of the
    runtime ``rt``; returns the :class:`Metrics` (also ``app.state.metrics``).

    The separate metrics port, when configured, is started by :func:`lifespan_start`.
    """
    settings = settings or MetricsSettings()
    metrics = Metrics()
    app.state.metrics, app.state.metrics_settings = metrics, settings
    if not settings.enabled:  # CRIMELENS_METRICS_ENABLED=false: no middleware, no route
        return metrics
    _LIVE.add(metrics)

    def rollup_ready() -> bool:
        hit, zone = rt.cache.peek((rt.generation, ("timezone", ())))
        return bool(hit and rt.rollups.peek((rt.generation, zone))[0])

    metrics.add_collector(StoreCollector(rt.query, clock=rt.clock, rollup_ready=rollup_ready))

    async def endpoint(request: Request) -> Response:
        return metrics_response(request, metrics, settings)

    app.add_api_route("/metrics", endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return metrics


def lifespan_start(app: Any) -> Any:
    """Start the tokenless metrics port if one is configured (one process only: in multiprocess mode
    ``serve`` starts it in the supervising process, :func:`supervisor_server`); returns the server or
    None."""
    settings: MetricsSettings = app.state.metrics_settings
    if not settings.enabled or settings.port is None or multiprocess_dir() is not None:
        return None
    return start_metrics_server(app.state.metrics, settings)


def supervisor_server(rt: Any, settings: MetricsSettings) -> Any:
    """In multiprocess mode, the metrics port served by the supervising process: every worker's
    series (merged from ``PROMETHEUS_MULTIPROC_DIR``) and the store's series read through ``rt``."""
    metrics = Metrics()
    metrics.add_collector(StoreCollector(rt.query, clock=rt.clock))
    return start_metrics_server(metrics, settings)


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) → (host, port); raises ValueError when malformed."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--metrics-bind must be HOST:PORT (e.g. 127.0.0.1:9464), got {text!r}")
    return host.strip("[]"), int(port)
