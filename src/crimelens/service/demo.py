"""``crimelens demo`` support: a demo administrator with a one-time random password, then serve.

The lead's ``crimelens demo`` command generates the synthetic city, ingests it, publishes hot
spots and a forecast (see :func:`crimelens.service.products.publish`), then calls
:func:`serve_demo`.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import TextIO

from crimelens.settings import Settings

DEMO_USER = "demo"


def create_demo_admin(settings: Settings, username: str = DEMO_USER) -> str:
    """Create (or reset) the demo admin in the store and return its random password."""
    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime

    password = "-".join(secrets.token_urlsafe(6) for _ in range(3))
    rt = Runtime(settings)
    try:
        acc = Accounts(rt)
        if acc.get(username) is None:
            acc.create(username, Role.admin, password, can_export=True)
        else:
            acc.set_password(username, password)
            acc.update(username, role=Role.admin, disabled=False)
            acc.unlock(username)
    finally:
        rt.close()
    return password


def serve_demo(store_path: str | Path, *, port: int = 8000, host: str = "127.0.0.1",
               settings: Settings | None = None, out: TextIO | None = None) -> None:
    """Create the demo admin, print its password once, and serve the dashboard until interrupted."""
    from crimelens.service.serve import serve

    base = settings or Settings()
    s = base.model_copy(update={"db": str(store_path), "host": host, "port": port})
    password = create_demo_admin(s)
    stream = out or sys.stdout
    stream.write(f"\ncrimelens dashboard: http://{host}:{port}/\n  user: {DEMO_USER}\n  password: {password}\n"
                 "  (shown once; reset with `crimelens users reset demo --password-stdin`)\n\n")
    stream.flush()
    serve(s)
