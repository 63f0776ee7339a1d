"""Run the app with uvicorn (TLS when a certificate and key are configured: SEC-17)."""

from __future__ import annotations

from crimelens.exceptions import InputError
from crimelens.settings import Settings


def serve(settings: Settings, *, log_level: str = "info") -> None:
    """Build the app for ``settings`` and serve it until interrupted."""
    import uvicorn

    from crimelens.service.app import create_app

    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise InputError("TLS needs both a certificate (tls_cert) and a key (tls_key)")
    app = create_app(settings)
    app.state.svc.rt.warm()  # the aggregate rollup, before the first request
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level,
                ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
                ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
                server_header=False, proxy_headers=False)
