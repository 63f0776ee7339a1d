"""Apply a mapping to one chunk of raw rows: canonical incidents, personal data, quarantine.

Every input row ends in exactly one place: the incident table (possibly with quality flags
and a dropped location), or the quarantine with a reason code and the raw values. The
:class:`CleanResult` carries the counts that the ingest report adds up.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crimelens.cleaning.categories import map_categories
from crimelens.cleaning.coordinates import clean_coordinates
from crimelens.cleaning.identity import content_ids, hash64, joined
from crimelens.cleaning.times import parse_times, precision_of_format
from crimelens.geo.crs import local_utm, to_local
from crimelens.geo.h3cells import h3_columns
from crimelens.governance.pseudonyms import pseudonymise
from crimelens.schema import (
    AREA_COLUMNS,
    INCIDENT_COLUMNS,
    INCIDENT_SCHEMA,
    PERSONAL_SCHEMA,
    QUARANTINE_SCHEMA,
)
from crimelens.sources.mapping import Mapping
from crimelens.sources.readers import RawChunk
from crimelens.taxonomy import FLAGS

_TRUE = {"true", "t", "yes", "y", "1", "arrest"}
_FALSE = {"false", "f", "no", "n", "0"}


@dataclass(slots=True)
class CleanContext:
    """Everything a chunk's cleaning depends on besides the rows (no hidden state, no I/O).

    ``crs`` is fixed for a source at its first load; ``seen`` carries content-id repeat counts
    across the chunks of one file.
    """

    source: str
    file: str
    batch_id: str
    ingested_at: pd.Timestamp
    now: pd.Timestamp
    key: bytes
    crs: str | None = None
    seen: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class CleanResult:
    """One chunk's output."""

    incidents: pa.Table
    personal: pa.Table
    quarantine: pa.Table
    read: int
    unmapped: Counter[str]
    flags: Counter[str]
    by_reason: Counter[str]
    fallback_dates: int = 0


def resolve_columns(header: list[str], mapping: Mapping) -> dict[str, str]:
    """Map each column the mapping names to the header's own spelling (case-insensitive)."""
    by_norm = {h.strip().lower(): h for h in header}
    return {c: by_norm[c.strip().lower()] for c in mapping.columns() if c.strip().lower() in by_norm}


def clean_chunk(chunk: RawChunk, mapping: Mapping, ctx: CleanContext) -> CleanResult:
    """Clean one chunk of raw rows with ``mapping``; see the module docstring."""
    raw = chunk.frame
    raw.index = pd.RangeIndex(len(raw))
    cols = resolve_columns(list(raw.columns), mapping)
    n = len(raw)

    def get(name: str) -> pd.Series | None:
        names = mapping.fields.get(name)
        if not names:
            return None
        parts = [raw[cols[c]].astype("string").str.strip() for c in names]
        if len(parts) == 1:
            s = parts[0]
        else:
            s = parts[0].fillna("")
            for p in parts[1:]:
                s = s + " " + p.fillna("")
            s = s.str.strip()
        return s.where(s != "")

    reason = pd.Series(None, index=raw.index, dtype=object)
    occurred = get("occurred_at")
    assert occurred is not None  # the mapping requires it
    if mapping.occurred_at_extract is not None:
        occurred = _extract(occurred, mapping.occurred_at_extract)
    times = parse_times(
        occurred, timezone=mapping.timezone, fmt=mapping.occurred_at_format, local=mapping.occurred_at_local,
        hour=get("occurred_at_hour"), clock=get("occurred_at_time"), now=ctx.now,
    )
    reason = reason.fillna(times.reason)
    optional = {}
    for name, fmt in (("reported_at", mapping.reported_at_format), ("occurred_until", mapping.occurred_until_format)):
        col = get(name)
        if col is not None:
            t = parse_times(col, timezone=mapping.timezone, fmt=fmt, local=mapping.occurred_at_local,
                            now=None, required=False)
            optional[name] = t.utc
        else:
            optional[name] = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us, UTC]")

    # identity
    mapped_cols = sorted(cols.values())
    row_text = joined(raw, list(raw.columns))
    if mapping.id_strategy in ("field", "field_or_content"):
        ids = get("incident_id")
        assert ids is not None  # guaranteed by the mapping validation
        if mapping.id_strategy == "field_or_content" and ids.isna().any():
            none = ids.isna()
            ids = ids.astype(object)
            ids[none] = content_ids(joined(raw[none], mapped_cols), ordinal=True, seen=ctx.seen)
        reason[ids.isna() & reason.isna()] = "missing_id"
    else:
        ids = content_ids(joined(raw, mapped_cols), ordinal=mapping.id_strategy == "content_ordinal", seen=ctx.seen)

    # coordinates
    coords = clean_coordinates(
        get("lat"), get("lon"), get("x"), get("y"), crs=mapping.crs, bbox=mapping.bbox, index=raw.index
    )
    located = np.isfinite(coords.lat) & np.isfinite(coords.lon)
    if mapping.require_location:
        reason[~located & reason.isna()] = "no_location"
    if ctx.crs is None and located.any():
        ctx.crs = local_utm(float(np.median(coords.lon[located])), float(np.median(coords.lat[located])))

    ok = reason.isna().to_numpy()
    quarantine = _quarantine(raw, chunk.records, reason, ~ok, ctx)
    if chunk.malformed:
        quarantine = pa.concat_tables([quarantine, _malformed(chunk.malformed, len(raw.columns), ctx)])
    keep = np.flatnonzero(ok)
    cat_text = get("category_text")
    if cat_text is None:
        cat_text = get("offense")
    if cat_text is None:
        cat_text = pd.Series(None, index=raw.index, dtype="string")
    cats = map_categories(cat_text.iloc[keep], mapping)

    def take(s: pd.Series | None) -> pd.Series:
        if s is None:
            return pd.Series(None, index=range(len(keep)), dtype=object)
        return s.iloc[keep].reset_index(drop=True).astype(object).where(lambda v: v.notna(), None)

    out = pd.DataFrame(index=range(len(keep)))
    out["source"] = ctx.source
    out["incident_id"] = take(ids)
    out["occurred_at"] = times.utc.iloc[keep].reset_index(drop=True)
    precision = _precision(mapping)
    until = optional["occurred_until"].iloc[keep].reset_index(drop=True)
    if precision in _PERIOD and "occurred_until" not in mapping.fields:
        until = _period_end(out["occurred_at"], precision, mapping.timezone)
    out["occurred_until"] = until
    out["time_precision"] = precision
    out["reported_at"] = optional["reported_at"].iloc[keep].reset_index(drop=True)
    out["offense"] = take(get("offense"))
    out["offense_code"] = take(get("offense_code"))
    for c in ("category", "category_group", "category_precision", "crimes_against", "ucr_part1"):
        out[c] = cats.labels[c].to_numpy()
    column_flags = {f: (c, p) for f, c, p in mapping.flags if c is not None}
    for flag in FLAGS:
        explicit = _booleans(take(get(flag)))
        if flag in column_flags:
            flag_col, flag_pat = column_flags[flag]
            vals = raw[cols[flag_col]].iloc[keep].reset_index(drop=True).astype("string")
            explicit = explicit.where(explicit.notna(), vals.str.contains(flag_pat, regex=True).astype(object))
        from_pattern = cats.flags.get(flag)
        if from_pattern is not None:
            explicit = explicit.where(explicit.notna(), pd.Series(from_pattern.to_numpy()).where(
                from_pattern.to_numpy(), None))
        out[flag] = explicit
    lat, lon = coords.lat[keep], coords.lon[keep]
    out["lat"], out["lon"] = lat, lon
    has = np.isfinite(lat)
    x = np.full(len(keep), np.nan)
    y = np.full(len(keep), np.nan)
    if ctx.crs is not None and has.any():
        x[has], y[has] = to_local(lon[has], lat[has], ctx.crs)
    out["x"], out["y"] = x, y
    out["crs"] = pd.Series(ctx.crs, index=out.index, dtype=object).where(has, None)
    out["location_precision"] = np.where(has, mapping.location_precision, "none")
    for res, cells in h3_columns(lat, lon).items():
        out[f"h3_{res}"] = cells
    out["address"] = take(get("address"))
    for area in AREA_COLUMNS:
        out[area] = take(get(area))
    out["premises"] = take(get("premises"))
    out["arrest"] = _booleans(take(get("arrest")))
    out["outcome"] = take(get("outcome"))
    out["discovery"] = _discovery(take(get("discovery")), mapping)
    personal_cols = {f: take(get(f)) for f in ("suspect", "victim", "narrative")}
    for field_name in ("suspect", "victim"):
        out[f"{field_name}_ref"] = (
            pseudonymise(personal_cols[field_name], ctx.key) if field_name in mapping.fields else None
        )
    out["has_narrative"] = personal_cols["narrative"].notna().to_numpy()
    qflags = coords.flag.iloc[keep].reset_index(drop=True)
    out["quality_flags"] = qflags
    out["extra"] = _extra_json(raw.iloc[keep].reset_index(drop=True), set(cols.values()))
    out["batch_id"] = ctx.batch_id
    out["ingested_at"] = ctx.ingested_at
    out["row_hash"] = hash64(row_text.iloc[keep].reset_index(drop=True))
    incidents = pa.Table.from_pandas(out[list(INCIDENT_COLUMNS)], schema=INCIDENT_SCHEMA, preserve_index=False)

    personal = _personal(out, personal_cols, ctx)
    flag_counts = Counter(qflags.dropna().tolist())
    return CleanResult(
        incidents=incidents,
        personal=personal,
        quarantine=quarantine,
        read=n + len(chunk.malformed),
        unmapped=Counter(cats.unmapped),
        flags=flag_counts,
        by_reason=Counter(reason.dropna().tolist()) + Counter({"malformed_row": len(chunk.malformed)}),
        fallback_dates=times.fallback,
    )


_PERIOD = {"hour": "h", "day": "D", "month": "MS", "year": "YS"}


def _extract(values: pd.Series, pattern: re.Pattern[str]) -> pd.Series:
    """Apply an ``occurred_at_extract`` regex: its groups joined by a space; null where it does not match.

    Timestamps repeat a lot, so the regex runs once per distinct value.
    """
    codes, uniques = pd.factorize(values)
    out: list[str | None] = []
    for u in uniques:
        m = pattern.search(str(u))
        joined_groups = " ".join(g for g in m.groups() if g) if m else ""
        out.append(joined_groups or None)
    mapped = np.asarray([*out, None], dtype=object)[codes]  # code -1 (null) takes the trailing None
    return pd.Series(mapped, index=values.index, dtype=object)


def _precision(mapping: Mapping) -> str:
    if mapping.time_precision:
        return mapping.time_precision
    if "occurred_at_hour" in mapping.fields:
        return "hour"
    if "occurred_at_time" in mapping.fields:
        return "minute"
    return precision_of_format(mapping.occurred_at_format) or "minute"


def _period_end(start: pd.Series, precision: str, timezone: str) -> pd.Series:
    """End of the period a coarse timestamp stands for (local calendar months and years)."""
    local = start.dt.tz_convert(timezone).dt.tz_localize(None)
    if precision == "month":
        end = local + pd.offsets.MonthBegin(1)
    elif precision == "year":
        end = local + pd.offsets.YearBegin(1)
    else:
        end = local + pd.to_timedelta(1, unit=_PERIOD[precision])  # type: ignore[call-overload]
    out: pd.Series = end.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward").dt.tz_convert(
        "UTC").astype("datetime64[us, UTC]")
    return out


def _booleans(s: pd.Series) -> pd.Series:
    low = s.astype("string").str.strip().str.lower()
    out = pd.Series(None, index=s.index, dtype=object)
    out[low.isin(_TRUE).fillna(False).to_numpy(bool)] = True
    out[low.isin(_FALSE).fillna(False).to_numpy(bool)] = False
    return out


def _discovery(s: pd.Series, mapping: Mapping) -> pd.Series:
    table = mapping.values.get("discovery", {})
    default = mapping.discovery
    if "discovery" not in mapping.fields:
        return pd.Series(default, index=s.index, dtype=object)
    return pd.Series(
        [table.get(str(v).strip().lower(), default) if v is not None else default for v in s.tolist()],
        index=s.index, dtype=object,
    )


def _quarantine(
    raw: pd.DataFrame, records: pd.Series, reason: pd.Series, bad: np.ndarray, ctx: CleanContext
) -> pa.Table:
    if not bad.any():
        return QUARANTINE_SCHEMA.empty_table()
    rows = raw[bad]
    messages = {
        "missing_date": "no occurrence date",
        "bad_date": "occurrence date could not be parsed",
        "date_too_old": "occurrence date before 1900",
        "date_in_future": "occurrence date in the future",
        "bad_hour": "hour column is not 0-23",
        "bad_time": "time-of-day column is not HHMM or HH:MM",
        "missing_id": "no incident id",
        "no_location": "the mapping requires a location and the row has none usable",
    }
    raw_json = [json.dumps({k: v for k, v in r.items() if v is not None and v == v}, ensure_ascii=False)
                for r in rows.to_dict("records")]
    reasons = reason[bad].tolist()
    return pa.table(
        {
            "source": [ctx.source] * len(rows),
            "file": [ctx.file] * len(rows),
            "line": records.to_numpy()[bad].astype(np.int64),
            "reason": reasons,
            "message": [messages.get(r, r) for r in reasons],
            "raw": raw_json,
            "batch_id": [ctx.batch_id] * len(rows),
        },
        schema=QUARANTINE_SCHEMA,
    )


def _malformed(texts: list[str], width: int, ctx: CleanContext) -> pa.Table:
    """Rows whose field count differs from the header's; line numbers are set by the ingest."""
    n = len(texts)
    return pa.table(
        {
            "source": [ctx.source] * n,
            "file": [ctx.file] * n,
            "line": pa.array([-1] * n, type=pa.int64()),
            "reason": ["malformed_row"] * n,
            "message": [f"row does not have the header's {width} fields"] * n,
            "raw": [json.dumps({"_row_text": t}, ensure_ascii=False) for t in texts],
            "batch_id": [ctx.batch_id] * n,
        },
        schema=QUARANTINE_SCHEMA,
    )


def _personal(out: pd.DataFrame, cols: dict[str, pd.Series], ctx: CleanContext) -> pa.Table:
    any_personal = cols["suspect"].notna() | cols["victim"].notna() | cols["narrative"].notna()
    if not any_personal.any():
        return PERSONAL_SCHEMA.empty_table()
    m = any_personal.to_numpy()
    return pa.table(
        {
            "source": out["source"][m].tolist(),
            "incident_id": out["incident_id"][m].tolist(),
            "suspect": cols["suspect"][m].tolist(),
            "victim": cols["victim"][m].tolist(),
            "narrative": cols["narrative"][m].tolist(),
            "batch_id": [ctx.batch_id] * int(m.sum()),
        },
        schema=PERSONAL_SCHEMA,
    )


def _extra_json(raw: pd.DataFrame, mapped: set[str]) -> pd.Series:
    """The raw columns no field took, as one JSON object per row (built column-wise)."""
    rest = [c for c in raw.columns if c not in mapped]
    if not rest or raw.empty:
        return pd.Series(None, index=raw.index, dtype=object)
    pieces: list[pa.Array] = []
    for i, c in enumerate(rest):
        col = pa.array(raw[c].astype(object).where(raw[c].notna(), None), type=pa.string())
        esc = col
        if pc.any(pc.match_substring_regex(col, r'["\\\x00-\x1f]')).as_py():
            for a, b in (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
                esc = pc.replace_substring(esc, a, b)
            esc = pc.replace_substring_regex(esc, r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "\ufffd")
        lead = ("{" if i == 0 else ",") + json.dumps(c) + ":"
        quoted = pc.binary_join_element_wise(lead + '"', esc, '"', "")
        pieces.append(pc.if_else(pc.is_null(col), lead + "null", quoted))
    pieces.append(pa.array(["}"] * len(raw), type=pa.string()))
    joined_arr = pc.binary_join_element_wise(*pieces, "")
    return pd.Series(joined_arr.to_numpy(zero_copy_only=False), index=raw.index, dtype=object)
