"""The crimelens web service: a FastAPI app built by :func:`create_app` and its dashboard.

Needs the ``[server]`` extra (FastAPI, uvicorn, argon2-cffi, pyotp, jinja2, python-multipart,
plotly). Nothing is created at import time; :func:`create_app` takes a
:class:`~crimelens.settings.Settings` and returns an application that owns the store's single
DuckDB writer connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crimelens.service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from crimelens.service.app import create_app

        return create_app
    raise AttributeError(name)
