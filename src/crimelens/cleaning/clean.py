"""Apply a mapping to one chunk of raw rows: canonical incidents, personal data, quarantine.

Every input row ends in exactly one place: the incident table (possibly with quality flags
and a dropped location), or the quarantine with a reason code and the raw values. The
:class:`CleanResult` carries the counts that the ingest report adds up.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crimelens.cleaning.categories import map_categories
from crimelens.cleaning.columns import Column, as_series, booleans, constant, field_text, json_objects, strings
from crimelens.cleaning.coordinates import clean_coordinates
from crimelens.cleaning.identity import content_ids, hash64, joined_arrow
from crimelens.cleaning.times import parse_times, precision_of_format
from crimelens.geo.crs import local_utm, to_local
from crimelens.geo.h3cells import PointCells, h3_columns
from crimelens.governance.pseudonyms import pseudonymise
from crimelens.schema import (
    AREA_COLUMNS,
    INCIDENT_SCHEMA,
    PERSONAL_FIELDS,
    PERSONAL_SCHEMA,
    QUARANTINE_SCHEMA,
    SUBJECT_COLUMNS,
    UTC_TS,
)
from crimelens.sources.mapping import Mapping
from crimelens.sources.readers import RawChunk
from crimelens.taxonomy import FLAGS


@dataclass(slots=True)
class CleanContext:
    """Everything a chunk's cleaning depends on besides the rows (no hidden state, no I/O).

    ``crs`` is fixed for a source at its first load; ``seen`` carries content-id repeat counts
    across the chunks of one file and ``cells`` the H3 cells of the points already indexed.
    """

    source: str
    file: str
    batch_id: str
    ingested_at: pd.Timestamp
    now: pd.Timestamp
    key: bytes
    crs: str | None = None
    seen: dict[int, int] = field(default_factory=dict)
    cells: PointCells = field(default_factory=PointCells)


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
    raw = chunk.table
    cols = resolve_columns(raw.column_names, mapping)
    n = raw.num_rows
    index = pd.RangeIndex(n)
    texts: dict[str, Column | None] = {}

    def text(name: str) -> Column | None:
        """A field's raw text (trimmed, multi-column fields joined; empty → null), Arrow."""
        if name not in texts:
            names = mapping.fields.get(name)
            texts[name] = field_text([raw.column(cols[c]) for c in names]) if names else None
        return texts[name]

    def get(name: str) -> pd.Series | None:
        t = text(name)
        return None if t is None else as_series(t)

    reason = pd.Series(None, index=index, dtype=object)
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
            optional[name] = pd.Series(pd.NaT, index=index, dtype="datetime64[us, UTC]")

    # identity
    mapped_cols = sorted(cols.values())
    row_text = joined_arrow(raw, raw.column_names)
    if mapping.id_strategy in ("field", "field_or_content"):
        ids = get("incident_id")
        assert ids is not None  # guaranteed by the mapping validation
        if mapping.id_strategy == "field_or_content" and ids.isna().any():
            none = ids.isna().to_numpy(dtype=bool)
            at = np.flatnonzero(none)
            missing_text = pd.Series(joined_arrow(raw.take(at), mapped_cols).to_numpy(zero_copy_only=False),
                                     index=at, dtype=object)
            ids = ids.astype(object)
            ids[none] = content_ids(missing_text, ordinal=True, seen=ctx.seen)
        reason[ids.isna() & reason.isna()] = "missing_id"
    else:
        all_text = pd.Series(joined_arrow(raw, mapped_cols).to_numpy(zero_copy_only=False), dtype=object)
        ids = content_ids(all_text, ordinal=mapping.id_strategy == "content_ordinal", seen=ctx.seen)

    # coordinates
    coords = clean_coordinates(
        get("lat"), get("lon"), get("x"), get("y"), crs=mapping.crs, bbox=mapping.bbox, index=index
    )
    located = np.isfinite(coords.lat) & np.isfinite(coords.lon)
    if mapping.require_location:
        reason[~located & reason.isna()] = "no_location"
    if ctx.crs is None and located.any():
        ctx.crs = local_utm(float(np.median(coords.lon[located])), float(np.median(coords.lat[located])))

    ok = reason.isna().to_numpy()
    quarantine = _quarantine(raw, chunk.records, reason, ~ok, ctx)
    if chunk.malformed:
        quarantine = pa.concat_tables([quarantine, _malformed(chunk.malformed, raw.num_columns, ctx)])
    keep = np.flatnonzero(ok)
    k = len(keep)
    at_keep = pa.array(keep, type=pa.int64())

    def kept(values: Column) -> Column:
        """The kept rows of a raw-row column (no copy in the common case where all are kept)."""
        return values if k == n else values.take(at_keep)
    cat_text = get("category_text")
    if cat_text is None:
        cat_text = get("offense")
    if cat_text is None:
        cat_text = pd.Series(None, index=index, dtype="string")
    cats = map_categories(cat_text.iloc[keep], mapping)

    def take(name: str) -> Column:
        t = text(name)
        return pa.nulls(k, pa.string()) if t is None else kept(t)

    out: dict[str, Column] = {
        "source": constant(ctx.source, k, pa.string()),
        "incident_id": strings(ids.iloc[keep], k),
    }
    occurred_at = times.utc.iloc[keep].reset_index(drop=True)
    out["occurred_at"] = pa.array(occurred_at, type=UTC_TS, from_pandas=True)
    precision = _precision(mapping)
    until = optional["occurred_until"].iloc[keep].reset_index(drop=True)
    if precision in _PERIOD and "occurred_until" not in mapping.fields:
        until = _period_end(occurred_at, precision, mapping.timezone)
    out["occurred_until"] = pa.array(until, type=UTC_TS, from_pandas=True)
    out["time_precision"] = constant(precision, k, pa.string())
    out["reported_at"] = pa.array(optional["reported_at"].iloc[keep], type=UTC_TS, from_pandas=True)
    out["offense"] = take("offense")
    out["offense_code"] = take("offense_code")
    for c in ("category", "category_group", "category_precision", "crimes_against", "ucr_part1"):
        out[c] = pa.array(cats.labels[c], type=pa.string(), from_pandas=True)
    column_flags = {f: (c, p) for f, c, p in mapping.flags if c is not None}
    for flag in FLAGS:
        explicit = booleans(take(flag))
        if flag in column_flags:
            flag_col, flag_pat = column_flags[flag]
            vals = as_series(kept(raw.column(cols[flag_col])))
            found = vals.str.contains(flag_pat, regex=True).astype(object)
            explicit = pc.coalesce(explicit, pa.array(found, type=pa.bool_(), from_pandas=True))
        from_pattern = cats.flags.get(flag)
        if from_pattern is not None:
            hit = from_pattern.to_numpy(dtype=bool)
            explicit = pc.coalesce(explicit, pa.array(hit, mask=~hit))
        out[flag] = explicit
    lat, lon = coords.lat[keep], coords.lon[keep]
    out["lat"], out["lon"] = pa.array(lat, from_pandas=True), pa.array(lon, from_pandas=True)
    has = np.isfinite(lat)
    x = np.full(k, np.nan)
    y = np.full(k, np.nan)
    if ctx.crs is not None and has.any():
        x[has], y[has] = to_local(lon[has], lat[has], ctx.crs)
    out["x"], out["y"] = pa.array(x, from_pandas=True), pa.array(y, from_pandas=True)
    out["crs"] = pc.if_else(pa.array(has), pa.scalar(ctx.crs, pa.string()), pa.scalar(None, pa.string()))
    out["location_precision"] = pc.if_else(pa.array(has), mapping.location_precision, "none")
    for res, cells in h3_columns(lat, lon, ctx.cells).items():
        out[f"h3_{res}"] = pa.array(cells, type=pa.int64(), from_pandas=True)
    out["address"] = take("address")
    for area in AREA_COLUMNS:
        out[area] = take(area)
    out["premises"] = take("premises")
    out["arrest"] = booleans(take("arrest"))
    out["outcome"] = take("outcome")
    out["discovery"] = _discovery(take("discovery"), mapping)
    personal_cols = {f: take(f) for f in PERSONAL_FIELDS}
    for field_name in ("suspect", "victim"):
        refs = pseudonymise(as_series(personal_cols[field_name]), ctx.key) if field_name in mapping.fields else None
        out[f"{field_name}_ref"] = strings(refs, k)
    out["has_narrative"] = pc.is_valid(personal_cols["narrative"])
    qflags = coords.flag.iloc[keep]
    out["quality_flags"] = strings(qflags.to_numpy(dtype=object), k)
    out["extra"] = _extra_json(raw, set(cols.values()), kept, k)
    out["batch_id"] = constant(ctx.batch_id, k, pa.string())
    out["ingested_at"] = constant(ctx.ingested_at, k, UTC_TS)
    out["row_hash"] = pa.array(hash64(kept(row_text)), type=pa.int64())
    out["record_kind"] = constant(mapping.record_kind, k, pa.string())
    for subject in SUBJECT_COLUMNS:
        out[subject] = _recoded(take(subject), mapping.values.get(subject, {}))
    out["search_hit"] = booleans(take("search_hit"))
    incidents = _table(out, INCIDENT_SCHEMA)

    personal = _personal(out["source"], out["incident_id"], personal_cols, ctx)
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


def _table(columns: dict[str, Column], schema: pa.Schema) -> pa.Table:
    """The columns as a table of ``schema``, refusing nulls in non-nullable fields."""
    arrays = [columns[f.name] for f in schema]
    for f, a in zip(schema, arrays, strict=True):
        if not f.nullable and a.null_count:
            raise ValueError(f"Field {f.name} was non-nullable but the column had {a.null_count} null values")
    return pa.Table.from_arrays(arrays, schema=schema)


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


def _recoded(values: Column, table: dict[str, str]) -> Column:
    """A categorical field as recorded, or recoded through its ``[values.<field>]`` table
    (case-insensitive; values the table does not name are kept as published)."""
    if not table:
        return values
    low = pc.utf8_lower(values)
    keys = pa.array(list(table), type=pa.string())
    at = pc.index_in(low, value_set=keys)
    recoded = pc.take(pa.array(list(table.values()), type=pa.string()), at)
    out: Column = pc.coalesce(recoded, values)
    return out


def _discovery(values: Column, mapping: Mapping) -> pa.Array:
    table = mapping.values.get("discovery", {})
    default = mapping.discovery
    if "discovery" not in mapping.fields:
        return constant(default, len(values), pa.string())
    return pa.array(
        [table.get(str(v).strip().lower(), default) if v is not None else default for v in values.to_pylist()],
        type=pa.string(),
    )


def _quarantine(
    raw: pa.Table, records: pd.Series, reason: pd.Series, bad: np.ndarray, ctx: CleanContext
) -> pa.Table:
    if not bad.any():
        return QUARANTINE_SCHEMA.empty_table()
    rows = raw.filter(pa.array(bad)).to_pandas()
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


def _personal(source: Column, ids: Column, cols: dict[str, Column], ctx: CleanContext) -> pa.Table:
    any_personal = pc.or_(pc.or_(pc.is_valid(cols["suspect"]), pc.is_valid(cols["victim"])),
                          pc.is_valid(cols["narrative"]))
    if not pc.any(any_personal).as_py():
        return PERSONAL_SCHEMA.empty_table()
    return pa.table(
        {
            "source": source.filter(any_personal),
            "incident_id": ids.filter(any_personal),
            "suspect": cols["suspect"].filter(any_personal),
            "victim": cols["victim"].filter(any_personal),
            "narrative": cols["narrative"].filter(any_personal),
            "batch_id": constant(ctx.batch_id, pc.sum(any_personal).as_py(), pa.string()),
        },
        schema=PERSONAL_SCHEMA,
    )


def _extra_json(raw: pa.Table, mapped: set[str], kept: Callable[[Column], Column], k: int) -> Column:
    """The raw columns no field took, as one JSON object for each of the ``k`` kept rows."""
    rest = [c for c in raw.column_names if c not in mapped]
    if not rest or not k:
        return pa.nulls(k, pa.string())
    return json_objects(pa.table([kept(raw.column(c)) for c in rest], names=rest))
