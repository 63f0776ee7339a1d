"""Run the app with uvicorn (TLS when a certificate and key are configured: SEC-17).

With ``workers > 1`` (PostgreSQL only: a DuckDB file has one writing process) uvicorn starts that
many processes; each builds its app with :func:`worker_app` from the settings, which reach it
through the environment (``CRIMELENS_*``, as :class:`~crimelens.settings.Settings` reads them).
Their Prometheus series are merged through a fresh ``PROMETHEUS_MULTIPROC_DIR`` (unless one is set),
and a separate metrics port (``--metrics-bind``) is served by this supervising process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

from crimelens.exceptions import InputError
from crimelens.service import cellindex, heap
from crimelens.settings import Settings


def _env(settings: Settings) -> dict[str, str]:
    """The settings that differ from the defaults, as ``CRIMELENS_*`` variables for worker processes."""
    out: dict[str, str] = {}
    for name, value in settings.model_dump(exclude_defaults=True).items():
        secret = getattr(value, "get_secret_value", None)
        text = secret() if callable(secret) else value
        out[f"CRIMELENS_{name.upper()}"] = str(text) if text is not None else ""
    return out


def worker_app() -> Any:
    """The app of one worker process (uvicorn's factory), warmed before its first request."""
    from crimelens.service.app import create_app

    app = create_app(Settings())
    app.state.svc.rt.warm()
    heap.settle()  # the start-up heap out of full collections (service/heap.py)
    cellindex.ready(app.state.svc.rt, app.state.svc.rt.settings.hotspot_cell_m)  # starts its build
    return app


def serve(settings: Settings, *, log_level: str = "info", workers: int = 1, stream: Any = None) -> None:
    """Build the app for ``settings`` and serve it until interrupted, in ``workers`` processes
    (with ``stream``, a :class:`~crimelens.service.instream.StreamSpec`, consuming it in-process)."""
    import uvicorn

    from crimelens.service.runtime import is_postgres

    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise InputError("TLS needs both a certificate (tls_cert) and a key (tls_key)")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if workers > 1 and stream is not None:
        raise InputError("--stream runs in one process: with --workers > 1 run `crimelens stream` beside the service")
    if workers > 1 and not is_postgres(settings.db):
        raise InputError("--workers > 1 needs a PostgreSQL store (a DuckDB file has a single writing process)")
    options: dict[str, Any] = dict(
        host=settings.host, port=settings.port, log_level=log_level,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        server_header=False, proxy_headers=False)
    if workers > 1:
        os.environ.update(_env(settings))
        _serve_workers(settings, workers, options)
        return
    from crimelens.service.app import create_app

    app = create_app(settings)
    app.state.stream_spec = stream
    app.state.svc.rt.warm()  # the aggregate rollup, before the first request
    heap.settle()  # the start-up heap out of full collections (service/heap.py)
    cellindex.ready(app.state.svc.rt, settings.hotspot_cell_m)  # the hot spot cell index, in the background
    uvicorn.run(app, **options)


def _serve_workers(settings: Settings, workers: int, options: dict[str, Any]) -> None:
    """Run ``workers`` uvicorn processes sharing one Prometheus multiprocess directory."""
    import uvicorn

    from crimelens.service import metrics

    made = None
    if metrics.multiprocess_dir() is None:  # set before any worker imports prometheus_client
        made = os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="crimelens-metrics-")
    port_settings = metrics.MetricsSettings()
    server = rt = None
    if port_settings.port is not None:
        from crimelens.service.runtime import Runtime

        rt = Runtime(settings)
        server = metrics.supervisor_server(rt, port_settings)
    try:
        uvicorn.run("crimelens.service.serve:worker_app", factory=True, workers=workers, **options)
    finally:
        if server is not None:
            server.shutdown()
        if rt is not None:
            rt.close()
        if made is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(made, ignore_errors=True)
