"""Alert tables on the store's connection (DuckDB, or PostgreSQL through the service): ``alerts``,
``alert_feedback``, ``alert_outbox`` and ``alert_delivery_log``.

They live beside the store's own tables (created here with ``CREATE TABLE IF NOT EXISTS``; their
DDL is declared with the other application tables in :mod:`crimelens.app_tables`, which is
also PostgreSQL migration step 5), so one file holds incidents, alerts and the deliveries still owed. Each alert is
kept whole as JSON (``payload``) with its searchable fields as columns; status changes and
analyst feedback are appended to ``alert_feedback``, which is the history precision is computed
from. All access is serialised by a lock, as a DuckDB connection must not be shared by threads
unguarded.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Protocol

import pandas as pd

from crimelens.alerts.feedback import LABELS
from crimelens.alerts.model import Alert
from crimelens.app_tables import ALERT_DDL
from crimelens.exceptions import InputError


class Executes(Protocol):
    """Anything with DuckDB's ``execute`` (a connection or a cursor)."""

    def execute(self, query: str, parameters: Any = ...) -> Any: ...



_ALERT_COLUMNS = ("alert_id", "key", "kind", "method", "rule", "area_level", "area", "category", "window_start",
                  "window_end", "observed", "expected", "p_value", "q_value", "severity", "status", "created_at",
                  "updated_at", "payload")
_INSERT_ALERT = (  # an upsert both DuckDB and PostgreSQL read the same way
    f"INSERT INTO alerts ({', '.join(_ALERT_COLUMNS)}) VALUES ({', '.join('?' * len(_ALERT_COLUMNS))}) "  # noqa: S608 -- fixed column list
    f"ON CONFLICT (alert_id) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _ALERT_COLUMNS[1:])}"
)


def _now() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _num(v: float) -> float | None:
    return None if v != v else float(v)  # NaN -> NULL


class AlertTables:
    """Create and use the alert tables on ``con`` (a DuckDB connection; the store's ``.con``)."""

    def __init__(self, con: Executes, *, lock: threading.RLock | None = None, create: bool = True) -> None:
        self.con = con
        self.lock = lock or threading.RLock()
        if create:
            with self.lock:
                for ddl in ALERT_DDL:
                    con.execute(ddl)

    def exists(self) -> bool:
        """True when the alert tables are there (a read-only store may predate them)."""
        got = self.query("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'alert_outbox' "
                         "AND table_schema = current_schema()")
        return bool(int(got["n"].iloc[0]))

    def query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        """Run a parameterised query under the lock and return a frame."""
        with self.lock:
            return self.con.execute(sql, params or []).fetch_df()  # type: ignore[no-any-return]

    def run(self, sql: str, params: list[Any] | None = None) -> None:
        """Run a parameterised statement under the lock."""
        with self.lock:
            self.con.execute(sql, params or [])

    # -- alerts ---------------------------------------------------------------------------
    def save(self, alert: Alert, *, now: pd.Timestamp | None = None) -> None:
        """Insert or replace ``alert`` (by id)."""
        at = now if now is not None else _now()
        created = alert.created_at if alert.created_at is not None else at
        stored = alert.with_updates(created_at=created)
        row = [stored.alert_id, stored.key, stored.kind, stored.method, stored.rule, stored.area_level,
               stored.area, stored.category, stored.window_start, stored.window_end, _num(stored.observed),
               _num(stored.expected), _num(stored.p_value), _num(stored.q_value), stored.severity,
               stored.status, created, at, json.dumps(stored.to_dict(), default=str)]
        self.run(_INSERT_ALERT, row)

    def get(self, alert_id: str) -> Alert | None:
        """The alert with this id (a unique prefix of at least 6 characters is enough)."""
        if len(alert_id) < 6:
            raise InputError("give at least 6 characters of the alert id")
        rows = self.query("SELECT payload FROM alerts WHERE alert_id LIKE ? || '%'", [alert_id])
        if len(rows) > 1:
            raise InputError(f"alert id prefix {alert_id!r} is ambiguous")
        return Alert.from_dict(json.loads(rows["payload"].iloc[0])) if len(rows) else None

    def find(self, *, status: str | None = None, since: pd.Timestamp | None = None, kind: str | None = None,
             limit: int = 500) -> list[Alert]:
        """Alerts, newest first, optionally by status, kind and creation time."""
        rows = self.query(
            "SELECT payload FROM alerts WHERE (? IS NULL OR status = ?) AND (? IS NULL OR kind = ?) "
            "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR created_at >= ?) ORDER BY created_at DESC LIMIT ?",
            [status, status, kind, kind, since, since, int(limit)])
        return [Alert.from_dict(json.loads(p)) for p in rows["payload"]]

    def recent(self, *, hours: float, now: pd.Timestamp | None = None) -> list[Alert]:
        """Alerts created in the last ``hours`` plus every open one (what de-duplication compares with)."""
        at = now if now is not None else _now()
        rows = self.query("SELECT payload FROM alerts WHERE created_at >= ? OR status <> 'resolved'",
                          [at - pd.Timedelta(hours=hours)])
        return [Alert.from_dict(json.loads(p)) for p in rows["payload"]]

    # -- feedback -------------------------------------------------------------------------
    def set_status(self, alert_id: str, status: str, *, label: str | None = None, note: str | None = None,
                   username: str | None = None, now: pd.Timestamp | None = None) -> Alert:
        """Acknowledge or resolve an alert, recording who, when, and the true/false-alarm label."""
        if status not in ("acknowledged", "resolved", "open"):
            raise InputError(f"status must be acknowledged, resolved or open, got {status!r}")
        if label is not None and label not in LABELS:
            raise InputError(f"label must be 'true' (real) or 'false' (false alarm), got {label!r}")
        at = now if now is not None else _now()
        with self.lock:
            alert = self.get(alert_id)
            if alert is None:
                raise InputError(f"no alert with id {alert_id!r}")
            updated = alert.with_updates(status=status)
            self.save(updated, now=at)
            self.run("INSERT INTO alert_feedback VALUES (?, ?, ?, ?, ?, ?)",
                     [alert.alert_id, status, label, note, username, at])
        return updated

    def feedback(self) -> pd.DataFrame:
        """One row per labelled alert (its latest label) with the alert's kind, method, rule and creation time."""
        return self.query(
            "SELECT f.alert_id, a.kind, a.method, a.rule, a.category, a.created_at, f.label, f.at_time AS labelled_at "
            "FROM (SELECT *, row_number() OVER (PARTITION BY alert_id ORDER BY at_time DESC) AS k "
            "FROM alert_feedback WHERE label IS NOT NULL) f JOIN alerts a USING (alert_id) WHERE f.k = 1 "
            "ORDER BY a.created_at")


def read_alerts(store: Any, *, open_only: bool = True, start: pd.Timestamp | None = None,
                end: pd.Timestamp | None = None, limit: int = 200) -> list[Alert]:
    """Alerts from a store opened read-only (no tables are created; none yet gives an empty list).

    ``start``/``end`` keep alerts whose window overlaps ``[start, end)``.
    """
    found = store.execute("SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'alerts' "
                          "AND table_schema = current_schema()")
    if not int(found["n"].iloc[0]):
        return []
    rows = store.execute(
        "SELECT payload FROM alerts WHERE (NOT ? OR status <> 'resolved') "
        "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR window_end > ?) "
        "AND (CAST(? AS TIMESTAMPTZ) IS NULL OR window_start < ?) "
        "ORDER BY created_at DESC LIMIT ?", [open_only, start, start, end, end, int(limit)])
    return [Alert.from_dict(json.loads(p)) for p in rows["payload"]]
