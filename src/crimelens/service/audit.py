"""Append-only, hash-chained audit log (SECURITY.md AUD-01 to AUD-04, AUD-06).

Every row carries UTC time, component, event, user, outcome, object id, source IP, request id,
and, for reads of personal data, the stated reason. Row ``n`` stores
``hash_n = SHA-256(hash_{n-1} ‖ canonical JSON of row n)``, so editing, inserting or deleting
any row breaks :func:`verify_chain` from that row on (Schneier & Kelsey 1999, "Secure audit
logs to support computer forensics"). The service offers no route that updates or deletes
audit rows; :func:`purge` removes only rows older than the retention period (at least a year)
and records itself as an audit event whose detail names the last removed hash, the anchor
from which verification continues.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crimelens.service.runtime import Runtime

GENESIS = "0" * 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
COLUMNS = ("seq", "ts", "component", "event", "username", "outcome", "object_id", "source_ip",
           "request_id", "reason", "detail", "prev_hash", "hash")


def escape_control(text: object, limit: int = 500) -> str:
    """``text`` with control characters escaped (``\\x0a``) and cut to ``limit`` characters."""
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))
    return s if len(s) <= limit else s[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class AuditContext:
    """Who did something and from where: filled from the request."""

    username: str | None = None
    source_ip: str | None = None
    request_id: str | None = None


def _ts(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _digest(prev: str, row: dict[str, Any]) -> str:
    body = {k: (_ts(v) if isinstance(v, datetime) else v) for k, v in row.items()}
    payload = prev + json.dumps(body, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class AuditLog:
    """Writes and reads the ``svc_audit`` table of a :class:`Runtime`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def record(
        self, ctx: AuditContext, event: str, outcome: str, *, component: str = "api",
        object_id: str | None = None, reason: str | None = None, detail: str | None = None,
    ) -> int:
        """Append one event and return its sequence number."""
        rt = self.rt
        with rt.transaction() as tx:
            tx.lock("svc_audit")  # one chain: writers in other processes wait here (PostgreSQL)
            got = tx.execute("SELECT seq, hash FROM svc_audit ORDER BY seq DESC LIMIT 1")
            seq, prev = (int(got[0][0]) + 1, str(got[0][1])) if got else (1, GENESIS)
            row: dict[str, Any] = {
                "seq": seq, "ts": rt.clock().astimezone(UTC), "component": component, "event": event,
                "username": _opt(ctx.username, 128), "outcome": outcome, "object_id": _opt(object_id, 200),
                "source_ip": _opt(ctx.source_ip, 64), "request_id": _opt(ctx.request_id, 64),
                "reason": _opt(reason, 500), "detail": _opt(detail, 1000),
            }
            digest = _digest(prev, row)
            tx.execute(
                f"INSERT INTO svc_audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
                [*row.values(), prev, digest],
            )
        return seq

    def rows(self, *, after: int = 0, limit: int = 100, event: str | None = None) -> list[dict[str, Any]]:
        """Audit rows with ``seq > after``, oldest first."""
        sql = f"SELECT {', '.join(COLUMNS)} FROM svc_audit WHERE seq > ?"  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
        params: list[Any] = [after]
        if event:
            sql += " AND event = ?"
            params.append(event)
        sql += " ORDER BY seq LIMIT ?"
        params.append(limit)
        return [_as_dict(r) for r in self.rt.query(sql, params)]

    def verify(self) -> dict[str, Any]:
        """Recompute the chain: ``{"ok", "rows", "first_bad"}`` (first_bad is a seq or None)."""
        rows = self.rt.query(f"SELECT {', '.join(COLUMNS)} FROM svc_audit ORDER BY seq")  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
        return verify_chain([_as_dict(r) for r in rows])

    def purge(self, ctx: AuditContext) -> int:
        """Remove rows older than the retention period; never younger ones. Returns rows removed."""
        rt = self.rt
        cutoff = rt.clock().astimezone(UTC) - timedelta(days=rt.settings.audit_retention_days)
        with rt.transaction() as tx:
            tx.lock("svc_audit")
            # only the oldest prefix of the chain goes: every row before the first young one
            young = tx.execute("SELECT min(seq) FROM svc_audit WHERE ts >= ?", [cutoff])[0]
            if young[0] is None:  # all old: keep the newest row so the chain continues
                young = tx.execute("SELECT max(seq) FROM svc_audit")[0]
            bound = young[0] if young[0] is not None else 0
            n, last_seq = tx.execute("SELECT count(*), max(seq) FROM svc_audit WHERE seq < ?", [bound])[0]
            n = int(n)
            if n == 0:
                return 0
            anchor = tx.execute("SELECT hash FROM svc_audit WHERE seq = ?", [last_seq])
            tx.execute("DELETE FROM svc_audit WHERE seq <= ?", [last_seq])
            self.record(ctx, "audit.purge", "ok", component="audit", object_id=str(last_seq),
                        detail=f"removed {n} rows older than {_ts(cutoff)}; anchor {anchor[0][0] if anchor else ''}")
        return n


def verify_chain(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Check that each row's hash matches its content and the previous row's hash.

    After a retention purge the first remaining row's ``prev_hash`` is taken as the anchor.
    """
    prev: str | None = None
    for r in rows:
        content = {k: r[k] for k in COLUMNS if k not in ("prev_hash", "hash")}
        expected_prev = r["prev_hash"] if prev is None else prev
        if r["prev_hash"] != expected_prev or _digest(expected_prev, content) != r["hash"]:
            return {"ok": False, "rows": len(rows), "first_bad": int(r["seq"])}
        prev = r["hash"]
    return {"ok": True, "rows": len(rows), "first_bad": None}


def _opt(value: object, limit: int) -> str | None:
    return None if value is None else escape_control(value, limit)


def _as_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    d = dict(zip(COLUMNS, row, strict=True))
    if isinstance(d["ts"], datetime):
        d["ts"] = d["ts"].astimezone(UTC)
    return d
