"""Incident filters and ``GROUP BY`` counts expressed on Spark DataFrames.

The same keys as :func:`crimelens.store.sql.counts_sql` (the DuckDB and PostgreSQL stores):
derived time keys are local wall-clock values in the sources' zone (``day``, ``week`` starting
Monday, ``month``, ``hour``, ``weekday`` with 0 = Monday), ``cell:<metres>`` gives square-cell
indices ``cell_x``/``cell_y`` of the local CRS, other keys are canonical columns. Only the
counts leave the cluster; the statistics (Gi*, KDE, trends, CompStat) run on them in the core.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pandas as pd

from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter, utc
from crimelens.schema import AREA_COLUMNS, INCIDENT_COLUMNS, RECORD_KINDS
from crimelens.store.sql import check_timezone

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

_CELL = re.compile(r"^cell:(\d+(?:\.\d+)?)$")
_TIME_KEYS = ("day", "week", "month", "hour", "weekday")


def _micros(when: object) -> int:
    ts = utc(when)  # type: ignore[arg-type]  # a datetime or an ISO string
    return int(ts.value // 1000)


def apply_filter(df: DataFrame, flt: IncidentFilter) -> DataFrame:
    """Rows of ``df`` (canonical incidents) that ``flt`` selects, with the stores' semantics."""
    from pyspark.sql import functions as F

    if flt.start is not None:
        df = df.where(F.col("occurred_at") >= F.timestamp_micros(F.lit(_micros(flt.start))))
    if flt.end is not None:
        df = df.where(F.col("occurred_at") < F.timestamp_micros(F.lit(_micros(flt.end))))
    cats = flt.category_names()
    if cats:
        df = df.where(F.col("category").isin(cats))
    elif not flt.include_non_crime:
        df = df.where(F.col("category_group") != "non_crime")
    if flt.sources:
        df = df.where(F.col("source").isin(list(flt.sources)))
    for col, vals in flt.areas.items():
        if col not in AREA_COLUMNS:
            raise InputError(f"unknown area column {col!r}; use one of {', '.join(AREA_COLUMNS)}")
        df = df.where(F.col(col).isin(list(vals)))
    if flt.located:
        df = df.where(F.col("lat").isNotNull())
    if set(flt.kinds) != set(RECORD_KINDS):
        df = df.where(F.col("record_kind").isin(list(flt.kinds)))
    return df


def _key(item: str, local: Column) -> tuple[list[Column], bool]:
    """The Spark expressions for one ``by`` item and whether it needs a location."""
    from pyspark.sql import functions as F

    if item in ("day", "week", "month"):
        return [F.date_trunc(item, local).alias(item)], False
    if item == "hour":
        return [F.hour(local).cast("long").alias("hour")], False
    if item == "weekday":
        return [((F.dayofweek(local) + 5) % 7).cast("long").alias("weekday")], False
    if (m := _CELL.match(item)) is not None:
        size = float(m.group(1))
        if size <= 0:
            raise InputError("cell size must be positive")
        return [F.floor(F.col("x") / size).cast("long").alias("cell_x"),
                F.floor(F.col("y") / size).cast("long").alias("cell_y")], True
    if item in INCIDENT_COLUMNS:
        return [F.col(item)], item.startswith("h3_")
    raise InputError(f"cannot group by {item!r}")


def spark_counts(df: DataFrame, by: Sequence[str], flt: IncidentFilter, *, tz: str = "UTC") -> pd.DataFrame:
    """Counts of ``df``'s incidents grouped by ``by`` (see the module docstring), as pandas."""
    from pyspark.sql import functions as F

    local = F.from_utc_timestamp(F.col("occurred_at"), check_timezone(tz))
    keys: list[Column] = []
    needs_location = False
    for item in by:
        exprs, located = _key(item, local)
        keys.extend(exprs)
        needs_location |= located
    rows = apply_filter(df, flt)
    if needs_location:
        rows = rows.where(F.col("x").isNotNull())
    if not keys:
        return pd.DataFrame({"count": [int(rows.count())]})
    grouped = rows.groupBy(*keys).agg(F.count(F.lit(1)).alias("count"))
    names = [c for c in grouped.columns if c != "count"]
    out = grouped.orderBy(*[F.col(n).asc_nulls_last() for n in names]).toPandas()
    for name in names:
        if name in _TIME_KEYS[:3]:  # local wall clock, naive (as the SQL stores return it)
            out[name] = pd.to_datetime(out[name])
        elif pd.api.types.is_datetime64_any_dtype(out[name]) and out[name].dt.tz is None:
            out[name] = out[name].dt.tz_localize("UTC")  # a stored instant: UTC, as the SQL stores return it
    return out


def spark_events(df: DataFrame, flt: IncidentFilter, columns: Sequence[str]) -> pd.DataFrame:
    """The located incidents ``flt`` selects, projected to ``columns``, as pandas.

    Filter, projection and the located test run on Spark; only the event table the core's
    forecasters bin into cells leaves the cluster, in the stores' order (time, then id) and
    with instants as UTC-aware timestamps, as :meth:`crimelens.store.base.Store.incidents` returns.
    """
    from pyspark.sql import functions as F

    rows = apply_filter(df, flt).where(F.col("x").isNotNull() & F.col("y").isNotNull())
    out = rows.orderBy("occurred_at", "incident_id").select(*columns).toPandas()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]) and out[name].dt.tz is None:
            out[name] = out[name].dt.tz_localize("UTC")
    return out
