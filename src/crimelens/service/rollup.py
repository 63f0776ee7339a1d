"""An hourly pre-aggregate of incident counts that answers the dashboard's aggregate queries.

The dashboard's charts (time series, hour × weekday, categories, CompStat) group millions of
incidents by a handful of keys under a date range, a category and a source filter. The service
keeps, per data generation, one row per (UTC hour, category, category group, source, time
precision) with its count — a few hundred thousand rows for millions of incidents — with every
key factorised to integer codes and the local day, week, month, hour and weekday precomputed
for the store's time zone. A query then becomes two binary searches for the date range and one
``numpy.bincount``: it gives exactly what :meth:`crimelens.store.base.Store.counts` gives
(checked against it in the tests), in a millisecond instead of a scan.

A query the rollup cannot answer exactly returns ``None`` and the caller asks the store: area
or location filters, other group keys (cells, area columns), range bounds that are not whole
UTC hours, or a zone whose offsets are not whole hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from crimelens.filters import IncidentFilter, utc
from crimelens.service.coded import Coded, filter_mask

#: Keys stored as columns of the pre-aggregate.
STORED_KEYS = ("category", "category_group", "source", "time_precision")
#: Wall-clock keys derived from the UTC hour in the store's zone.
TIME_KEYS = ("day", "week", "month", "hour", "weekday")
#: What :meth:`CountsRollup.counts` can group by.
ROLLUP_KEYS = frozenset(STORED_KEYS + TIME_KEYS)
_MAX_GROUPS = 20_000_000  # larger cross products go to the store


def hourly_counts_keys() -> list[str]:
    """The ``Store.counts`` keys (with ``tz="UTC"``) the rollup is built from."""
    return ["day", "hour", *STORED_KEYS]


def _ns(bound: datetime) -> int:
    """``bound`` as int64 nanoseconds since the epoch, clamped for dates beyond that range."""
    ts = utc(bound)
    try:
        return int(ts.as_unit("ns").value)
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        return int(np.iinfo(np.int64).min if ts.year < 1970 else np.iinfo(np.int64).max)


class CountsRollup:
    """Incident counts per UTC hour and stored key, answering ``counts(by, filter)`` for one zone."""

    def __init__(self, hourly: pd.DataFrame, timezone: str) -> None:
        """``hourly``: ``store.counts(hourly_counts_keys(), IncidentFilter(include_non_crime=True), tz="UTC")``."""
        self.timezone = timezone
        start = pd.to_datetime(hourly["day"]) + pd.to_timedelta(hourly["hour"].astype("int64"), unit="h")
        start = start.dt.tz_localize("UTC") if start.dt.tz is None else start.dt.tz_convert("UTC")
        order = np.argsort(start.to_numpy(dtype="datetime64[ns]"), kind="stable")
        start = start.iloc[order].reset_index(drop=True)
        self._t = start.to_numpy(dtype="datetime64[ns]").astype(np.int64)
        self._n = hourly["count"].to_numpy(dtype=np.int64)[order]
        self._keys: dict[str, Coded] = {}
        for name in STORED_KEYS:  # the schema makes these non-null
            codes, values = pd.factorize(hourly[name].iloc[order].astype(object), sort=True)
            self._keys[name] = Coded(codes.astype(np.int64), np.asarray(values, dtype=object))
        local = start.dt.tz_convert(timezone).dt.tz_localize(None)
        #: whether every hour starts on a local whole hour (false for zones offset by 30 or 45 min)
        self.exact = bool((local.dt.minute == 0).all()) if len(local) else True
        day = local.dt.floor("D")
        derived: dict[str, pd.Series] = {
            "day": day,
            "week": day - pd.to_timedelta(day.dt.day_of_week, unit="D"),
            "month": day.dt.to_period("M").dt.start_time,
            "hour": local.dt.hour.astype("int64"),
            "weekday": local.dt.day_of_week.astype("int64"),
        }
        for name, series in derived.items():
            codes, values = pd.factorize(series, sort=True)
            self._keys[name] = Coded(codes.astype(np.int64), np.asarray(values))

    def __len__(self) -> int:
        return len(self._n)

    def answers(self, by: Sequence[str], flt: IncidentFilter) -> bool:
        """Whether :meth:`counts` gives the store's exact answer for this query."""
        if not self.exact or flt.areas or flt.located or not set(by) <= ROLLUP_KEYS or len(set(by)) != len(by):
            return False
        if flt.kinds != IncidentFilter().kinds:  # built from the default filter: crimes only
            return False
        for bound in (flt.start, flt.end):
            if bound is not None and utc(bound) != utc(bound).floor("h"):
                return False
        sizes = [len(self._keys[k].values) for k in by]
        return float(np.prod(sizes, dtype=np.float64)) <= _MAX_GROUPS

    def counts(self, by: Sequence[str], flt: IncidentFilter) -> pd.DataFrame | None:
        """Counts grouped by ``by`` as the store would return them, or None when not answerable."""
        if not self.answers(by, flt):
            return None
        lo = 0 if flt.start is None else int(np.searchsorted(self._t, _ns(flt.start), side="left"))
        hi = len(self._t) if flt.end is None else int(np.searchsorted(self._t, _ns(flt.end), side="left"))
        rows = np.arange(lo, max(lo, hi))
        keep = filter_mask(self._keys, flt, rows)  # no record_kind key: built from the default kinds
        if keep is not None:
            rows = rows[keep]
        weights = self._n[rows]
        if not by:
            return pd.DataFrame({"count": [int(weights.sum())]})
        sizes = [len(self._keys[k].values) for k in by]
        flat = np.ravel_multi_index([self._keys[k].codes[rows] for k in by], sizes) if rows.size else rows
        totals = np.bincount(flat, weights=weights, minlength=0).astype(np.int64)
        present = np.flatnonzero(totals)
        parts = np.unravel_index(present, sizes)
        out = pd.DataFrame({k: self._keys[k].values[codes] for k, codes in zip(by, parts, strict=True)})
        out["count"] = totals[present]
        return out  # ravel order is lexicographic in the sorted codes: already ORDER BY ``by``

