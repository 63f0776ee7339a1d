"""SQL shared by the DuckDB and PostgreSQL stores: DDL from Arrow schemas, filters, counts.

Only parameterised values reach the database (SECURITY.md SEC-15); identifiers come from the
canonical schema or from a fixed list of derived keys, never from user text.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Sequence
from typing import Any, Literal

import pyarrow as pa

from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter, utc
from crimelens.schema import AREA_COLUMNS, INCIDENT_COLUMNS, RECORD_KINDS

Dialect = Literal["duckdb", "postgres"]
_ZONES = zoneinfo.available_timezones() | {"UTC"}

_TYPES: dict[str, dict[Dialect, str]] = {
    "string": {"duckdb": "VARCHAR", "postgres": "TEXT"},
    "large_string": {"duckdb": "VARCHAR", "postgres": "TEXT"},
    "bool": {"duckdb": "BOOLEAN", "postgres": "BOOLEAN"},
    "double": {"duckdb": "DOUBLE", "postgres": "DOUBLE PRECISION"},
    "int64": {"duckdb": "BIGINT", "postgres": "BIGINT"},
    "timestamp[us, tz=UTC]": {"duckdb": "TIMESTAMPTZ", "postgres": "TIMESTAMPTZ"},
}


def ddl_for(table: str, schema: pa.Schema, *, dialect: Dialect, temporary: bool = False) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for an Arrow schema."""
    cols = []
    for f in schema:
        sqltype = _TYPES[str(f.type)][dialect]
        cols.append(f'"{f.name}" {sqltype}{"" if f.nullable else " NOT NULL"}')
    kind = "TEMP TABLE" if temporary else "TABLE"
    return f"CREATE {kind} IF NOT EXISTS {table} ({', '.join(cols)})"


def add_columns_sql(table: str, schema: pa.Schema, names: Sequence[str], *, dialect: Dialect) -> list[str]:
    """``ALTER TABLE ... ADD COLUMN IF NOT EXISTS`` for columns added to ``schema`` after a store
    was created (:data:`crimelens.schema.ADDED_COLUMNS`); ``record_kind`` defaults to ``'crime'``."""
    out = []
    for name in names:
        f = schema.field(name)
        default = " DEFAULT 'crime'" if name == "record_kind" else ""
        # DuckDB cannot add a constrained column; PostgreSQL can (the default fills old rows)
        constraint = " NOT NULL" if not f.nullable and default and dialect == "postgres" else ""
        out.append(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{name}" {_TYPES[str(f.type)][dialect]}'
                   f"{default}{constraint}")
    return out


def where_clause(flt: IncidentFilter, *, alias: str = "", dialect: Dialect = "duckdb") -> tuple[str, list[Any]]:
    """A parameterised WHERE condition for ``flt``."""
    p = "%s" if dialect == "postgres" else "?"
    a = f"{alias}." if alias else ""
    conds: list[str] = ["TRUE"]
    params: list[Any] = []
    if flt.start is not None:
        conds.append(f"{a}occurred_at >= {p}")
        params.append(utc(flt.start).to_pydatetime())
    if flt.end is not None:
        conds.append(f"{a}occurred_at < {p}")
        params.append(utc(flt.end).to_pydatetime())
    cats = flt.category_names()
    if cats:
        conds.append(f"{a}category IN ({', '.join([p] * len(cats))})")
        params.extend(cats)
    elif not flt.include_non_crime:
        conds.append(f"{a}category_group <> 'non_crime'")
    if flt.sources:
        conds.append(f"{a}source IN ({', '.join([p] * len(flt.sources))})")
        params.extend(flt.sources)
    for col, vals in flt.areas.items():
        if col not in AREA_COLUMNS:
            raise InputError(f"unknown area column {col!r}; use one of {', '.join(AREA_COLUMNS)}")
        conds.append(f'{a}"{col}" IN ({", ".join([p] * len(vals))})')
        params.extend(vals)
    if flt.located:
        conds.append(f"{a}lat IS NOT NULL")
    if set(flt.kinds) != set(RECORD_KINDS):  # crimes only unless asked (IncidentFilter.kinds)
        conds.append(f"{a}record_kind IN ({', '.join([p] * len(flt.kinds))})")
        params.extend(flt.kinds)
    return " AND ".join(conds), params


_DERIVED: dict[str, dict[Dialect, str]] = {
    "day": {"duckdb": "date_trunc('day', {t})", "postgres": "date_trunc('day', {t})"},
    "week": {"duckdb": "date_trunc('week', {t})", "postgres": "date_trunc('week', {t})"},
    "month": {"duckdb": "date_trunc('month', {t})", "postgres": "date_trunc('month', {t})"},
    "hour": {"duckdb": "hour({t})", "postgres": "extract(hour FROM {t})::int"},
    "weekday": {"duckdb": "isodow({t}) - 1", "postgres": "extract(isodow FROM {t})::int - 1"},
}
_CELL = re.compile(r"^cell:(\d+(?:\.\d+)?)$")


def check_timezone(tz: str) -> str:
    """``tz`` if it is an IANA zone name, else :class:`InputError` (it is embedded in SQL text)."""
    if tz not in _ZONES:
        raise InputError(f"unknown time zone {tz!r}")
    return tz


def cell_keys(size: float) -> tuple[str, str]:
    """The SQL of the ``cell_x`` and ``cell_y`` keys of ``cell:<size>`` (square cells of the local CRS)."""
    if size <= 0:
        raise InputError("cell size must be positive")
    return (f"CAST(floor(x / {size!r}) AS BIGINT) AS cell_x", f"CAST(floor(y / {size!r}) AS BIGINT) AS cell_y")


def counts_sql(by: Sequence[str], flt: IncidentFilter, *, dialect: Dialect, tz: str = "UTC") -> tuple[str, list[Any]]:
    """``SELECT keys..., count(*) AS count ... GROUP BY keys`` for :meth:`Store.counts`.

    Derived time keys (day, week (Monday), month, hour, weekday 0=Monday) are wall-clock values
    in ``tz`` (the sources' own zone, so a 23:30 incident counts at 23 h on its local day);
    ``cell:<metres>`` yields ``cell_x``/``cell_y`` square-cell indices of the local CRS.
    """
    local = f"(occurred_at AT TIME ZONE '{check_timezone(tz)}')"
    keys: list[str] = []
    names: list[str] = []
    needs_location = False
    for item in by:
        if item in _DERIVED:
            keys.append(f"{_DERIVED[item][dialect].format(t=local)} AS {item}")
            names.append(item)
        elif (m := _CELL.match(item)) is not None:
            keys.extend(cell_keys(float(m.group(1))))
            names.extend(["cell_x", "cell_y"])
            needs_location = True
        elif item in INCIDENT_COLUMNS:
            keys.append(f'"{item}"')
            names.append(item)
            needs_location |= item.startswith("h3_")
        else:
            raise InputError(f"cannot group by {item!r}")
    where, params = where_clause(flt, dialect=dialect)
    if needs_location:
        where += " AND x IS NOT NULL"
    select = ", ".join([*keys, "count(*) AS count"])
    group = ", ".join(str(i + 1) for i in range(len(names)))
    sql = f"SELECT {select} FROM incidents WHERE {where}"  # noqa: S608 -- identifiers come from the canonical schema; values are bound parameters
    if names:
        sql += f" GROUP BY {group} ORDER BY {group}"
    return sql, params
