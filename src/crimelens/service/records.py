"""Incident records for the API: keyset pagination and field-level access by role (SEC-10/11/20).

* viewer: no address, pseudonyms, raw extras or personal fields; coordinates rounded to three
  decimals (about 100 m), a light geomask for a role that only needs patterns.
* analyst, admin: every published field and the keyed pseudonyms; the personal originals
  (suspect, victim, narrative) only when the request states a reason, which is audited.

Users may be limited to some sources; records of other sources do not exist for them (404).
Cursors are opaque (base64 of the last row's sort key) and never contain personal data.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter
from crimelens.governance.exports import neutralise
from crimelens.service.auth import Principal, Role
from crimelens.store.duckdb import DuckDBStore
from crimelens.store.fieldcrypt import cipher_from_env, decrypt_frame
from crimelens.store.sql import where_clause

PUBLIC_FIELDS = (
    "source", "incident_id", "occurred_at", "occurred_until", "time_precision", "reported_at", "offense",
    "offense_code", "category", "category_group", "crimes_against", "ucr_part1", "attempted", "firearm",
    "domestic", "hate", "residential", "lat", "lon", "location_precision", "beat", "district", "ward",
    "community_area", "neighbourhood", "lsoa", "premises", "arrest", "outcome", "discovery", "has_narrative",
    "quality_flags", "ingested_at",
)
ANALYST_FIELDS = (*PUBLIC_FIELDS, "address", "suspect_ref", "victim_ref")
PERSONAL = ("suspect", "victim", "narrative")
EXPORT_FIELDS = ANALYST_FIELDS


def fields_for(role: Role) -> tuple[str, ...]:
    """The incident fields ``role`` may read (personal originals excluded)."""
    return ANALYST_FIELDS if role >= Role.analyst else PUBLIC_FIELDS


def may_read_personal(role: Role) -> bool:
    """Whether ``role`` may read personal originals (with a stated reason)."""
    return role >= Role.analyst


def scoped(flt: IncidentFilter, who: Principal) -> IncidentFilter:
    """``flt`` limited to the sources ``who`` may see; :class:`PermissionError` for a forbidden source."""
    if not who.sources:
        return flt
    asked = set(flt.sources)
    if asked - set(who.sources):
        raise PermissionError("source not permitted for this user")
    keep = tuple(s for s in flt.sources if s in who.sources) if asked else tuple(who.sources)
    return IncidentFilter(start=flt.start, end=flt.end, categories=flt.categories, sources=keep,
                          areas=flt.areas, include_non_crime=flt.include_non_crime, located=flt.located)


def rounded_sql(column: str, digits: int) -> str:
    """SQL for ``column`` (a double) rounded to ``digits`` decimals, read the same on DuckDB and PostgreSQL."""
    return f"CAST(round(CAST({column} AS DECIMAL(12, 6)), {int(digits)}) AS DOUBLE PRECISION)"


def encode_cursor(row: dict[str, Any]) -> str:
    """Opaque cursor after ``row``."""
    key = [pd.Timestamp(row["occurred_at"]).isoformat(), row["source"], row["incident_id"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    """The sort key inside ``cursor``; :class:`InputError` when malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        t, src, iid = json.loads(raw)
        return pd.Timestamp(t).to_pydatetime(), str(src), str(iid)
    except (ValueError, TypeError) as exc:
        raise InputError("malformed cursor") from exc


def page(store: DuckDBStore, flt: IncidentFilter, who: Principal, *, limit: int, cursor: str | None,
         personal: bool) -> tuple[list[dict[str, Any]], str | None]:
    """One page of incidents, newest first, with the fields ``who`` may read."""
    where, params = where_clause(flt, alias="i")
    if cursor:
        t, src, iid = decode_cursor(cursor)
        where += (" AND (i.occurred_at < ? OR (i.occurred_at = ? AND (i.source < ? OR "
                  "(i.source = ? AND i.incident_id < ?))))")
        params += [t, t, src, src, iid]
    rows = _select(store, fields_for(who.role), personal, where, params,
                   "ORDER BY i.occurred_at DESC, i.source DESC, i.incident_id DESC LIMIT ?", [limit + 1])
    nxt = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return [_shape(r, who.role) for r in rows[:limit]], nxt


def one(store: DuckDBStore, source: str, incident_id: str, who: Principal, *, personal: bool) -> dict[str, Any] | None:
    """One incident, or None when absent or outside ``who``'s sources."""
    if who.sources and source not in who.sources:
        return None
    rows = _select(store, fields_for(who.role), personal, "i.source = ? AND i.incident_id = ?",
                   [source, incident_id], "LIMIT 1", [])
    return _shape(rows[0], who.role) if rows else None


def many(store: DuckDBStore, keys: Sequence[str], who: Principal, *, limit: int = 200) -> list[dict[str, Any]]:
    """Incidents by ``source:incident_id`` key (newest first), only ``who``'s sources, standard fields."""
    wanted = [k for k in keys if ":" in k and (not who.sources or k.split(":", 1)[0] in who.sources)][:limit]
    if not wanted:
        return []
    rows = _select(store, fields_for(who.role), False,
                   f"i.source || ':' || i.incident_id IN ({', '.join('?' * len(wanted))})",
                   wanted, "ORDER BY i.occurred_at DESC, i.source, i.incident_id LIMIT ?", [limit])
    return [_shape(r, who.role) for r in rows]


def export_rows(store: DuckDBStore, flt: IncidentFilter, limit: int) -> pd.DataFrame:
    """Rows for a CSV export (no personal originals), text cells neutralised (SEC-16)."""
    where, params = where_clause(flt, alias="i")
    cols = ", ".join(f'i."{c}"' for c in EXPORT_FIELDS)
    frame = store.execute(f"SELECT {cols} FROM incidents i WHERE {where} "  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
                          "ORDER BY i.occurred_at DESC, i.source, i.incident_id LIMIT ?", [*params, limit])
    for col in frame.columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            frame[col] = frame[col].map(neutralise)
    return frame


def _select(store: DuckDBStore, fields: Sequence[str], personal: bool, where: str, params: list[Any],
            tail: str, tail_params: list[Any]) -> list[dict[str, Any]]:
    cols = ", ".join(f'i."{c}"' for c in fields)
    join = ""
    if personal:
        cols += ", p.suspect, p.victim, p.narrative, i.source AS _row_source, i.incident_id AS _row_id"
        join = " LEFT JOIN incident_personal p ON p.source = i.source AND p.incident_id = i.incident_id"
    frame = store.execute(f"SELECT {cols} FROM incidents i{join} WHERE {where} {tail}", [*params, *tail_params])  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
    if personal:  # values encrypted by the PostgreSQL store (store.fieldcrypt); DuckDB's are plain here
        frame = decrypt_frame(frame, cipher_from_env(), frame.pop("_row_source"), frame.pop("_row_id"))
    out: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso", date_unit="us"))
    return out


def _shape(row: dict[str, Any], role: Role) -> dict[str, Any]:
    if role < Role.analyst:
        for k in ("lat", "lon"):
            if row.get(k) is not None:
                row[k] = round(float(row[k]), 3)
    return row
