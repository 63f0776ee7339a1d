"""Structured logs: one JSON object per line, safe to ship to a log store (SECURITY.md AUD-06).

Each line has ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg`` and, when the record carries
them, a few allow-listed fields (``request_id``, ``method``, ``route``, ``status``, ``duration_ms``,
``job_id``, ``kind``, ``event``, ``ids``, ``count``). Nothing else from a record's ``extra`` is
written, so a caller cannot leak a field by accident.

What keeps personal data out:

* messages are escaped (control characters as ``\\x0a``) and cut to 2,000 characters;
* access-log lines (``uvicorn.access``) keep the path but drop the **query string**, where search
  terms (names, addresses) would otherwise land; the client address is dropped too;
* exceptions are logged as their type and code locations, never their message, which may quote
  data (the same rule as the service's last-resort error handler);
* the service's own log calls name ids and counts, never names, addresses or narratives; the
  tests grep the output for the personal values of their fixture.

Enable with ``CRIMELENS_LOG_FORMAT=json`` (default ``text``); ``serve`` then formats its own and
uvicorn's loggers this way.
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from crimelens.service.audit import escape_control

#: Record attributes copied into the JSON object when present.
FIELDS = ("request_id", "method", "route", "status", "duration_ms", "job_id", "kind", "event", "ids", "count")
#: Loggers the service configures.
LOGGERS = ("crimelens", "uvicorn", "uvicorn.error", "uvicorn.access")
MAX_MESSAGE = 2000


class LogSettings(BaseSettings):
    """Log output (environment ``CRIMELENS_LOG_FORMAT``, ``CRIMELENS_LOG_LEVEL``)."""

    model_config = SettingsConfigDict(env_prefix="CRIMELENS_LOG_", env_file=".env", extra="ignore")

    format: Literal["text", "json"] = "text"
    level: Literal["debug", "info", "warning", "error"] = "info"


def strip_query(path: str) -> str:
    """``path`` without its query string or fragment."""
    return path.split("?", 1)[0].split("#", 1)[0]


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line with allow-listed fields only."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line for ``record``."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) >= 5:
            # uvicorn's access record: (client address, method, full path, http version, status)
            _, method, path, _, status = record.args[:5]
            out["msg"] = "request"
            out.update(method=str(method), path=escape_control(strip_query(str(path)), 500), status=int(str(status)))
        else:
            out["msg"] = escape_control(record.getMessage(), MAX_MESSAGE)
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value if isinstance(value, int | float | bool) else escape_control(value, 500)
        if record.exc_info and record.exc_info[0] is not None:
            _, exc, tb = record.exc_info
            out["error"] = type(exc).__name__
            out["where"] = " <- ".join(f"{Path(f.filename).name}:{f.lineno}:{f.name}"
                                       for f in reversed(traceback.extract_tb(tb)[-6:]))
        return json.dumps(out, ensure_ascii=True, default=str)


def configure(level: int = logging.INFO, *, stream: Any = None) -> logging.Handler:
    """Send the service's and uvicorn's loggers to one JSON handler (``stream``: stderr by default).

    Safe to call more than once: the handler it installed earlier is replaced.
    """
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.set_name("crimelens-json")
    for name in LOGGERS:
        logger = logging.getLogger(name)
        for old in [h for h in logger.handlers if h.get_name() == "crimelens-json" or name.startswith("uvicorn")]:
            logger.removeHandler(old)
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or name == "crimelens":
            logger.setLevel(level)
    return handler
