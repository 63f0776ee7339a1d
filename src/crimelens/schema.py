"""The canonical incident table: its columns, their types, and the single validation gate.

Every source becomes this table (see ``docs/schema.md``). Analyses, stores and services read
only these columns, so a new portal needs a mapping file and nothing else.

Personal fields (``suspect``, ``victim``, ``narrative``) never sit in the incident table: the
cleaning step replaces names by keyed HMAC pseudonyms (``suspect_ref``, ``victim_ref``) and moves
the originals into a separate restricted table (:data:`PERSONAL_SCHEMA`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import pandas as pd
import pyarrow as pa

from crimelens.exceptions import SchemaError
from crimelens.taxonomy import BY_NAME, GROUPS

UTC_TS = pa.timestamp("us", tz="UTC")

TIME_PRECISIONS: Final = ("minute", "hour", "day", "month", "year")
LOCATION_PRECISIONS: Final = ("exact", "block", "snapped", "area", "none")
DISCOVERY: Final = ("reported", "police_initiated", "unknown")

#: What a record is: a recorded crime (the default), a stop or search, an arrest, a call for
#: service or a sensor detection (e.g. gunshot detection). Analyses count crimes unless asked.
RECORD_KINDS: Final = ("crime", "stop", "arrest", "call_for_service", "sensor")

#: Categorical attributes of the person stopped or arrested, as the source records them (never
#: free text; officer-defined and self-defined ethnicity are kept apart).
SUBJECT_COLUMNS: Final = (
    "subject_age_band", "subject_sex", "subject_ethnicity_self", "subject_ethnicity_officer",
)

#: Area identifier columns a source may fill (beat, district, neighbourhood, LSOA...).
AREA_COLUMNS: Final = ("beat", "district", "ward", "community_area", "neighbourhood", "lsoa")

#: H3 resolutions computed at ingest (about 5 km², 0.7 km² and 0.1 km² cells).
H3_RESOLUTIONS: Final = (7, 8, 9)

INCIDENT_FIELDS: Final[tuple[tuple[str, pa.DataType, bool, str], ...]] = (
    # name, type, nullable, description
    ("source", pa.string(), False, "source name (preset or user-given)"),
    ("incident_id", pa.string(), False, "source-unique id; a stable content hash where the source has none"),
    ("occurred_at", UTC_TS, False, "start of the occurrence, UTC"),
    ("occurred_until", UTC_TS, True, "end of the occurrence window, UTC"),
    ("time_precision", pa.string(), False, "minute|hour|day|month|year"),
    ("reported_at", UTC_TS, True, "when it was reported, UTC"),
    ("offense", pa.string(), True, "raw offence text as published"),
    ("offense_code", pa.string(), True, "raw offence code as published"),
    ("category", pa.string(), False, "canonical category (leaf or roll-up)"),
    ("category_group", pa.string(), False, "violent|property|society|non_crime|other"),
    ("category_precision", pa.string(), False, "leaf|rollup|group"),
    ("crimes_against", pa.string(), False, "NIBRS view: person|property|society|none"),
    ("ucr_part1", pa.string(), False, "UCR Part I view: violent|property|none"),
    ("attempted", pa.bool_(), True, "attempt flag where the source has it"),
    ("firearm", pa.bool_(), True, "firearm involved"),
    ("domestic", pa.bool_(), True, "domestic incident"),
    ("hate", pa.bool_(), True, "hate-motivated"),
    ("residential", pa.bool_(), True, "residential premises"),
    ("lat", pa.float64(), True, "WGS84 latitude"),
    ("lon", pa.float64(), True, "WGS84 longitude"),
    ("x", pa.float64(), True, "easting in metres, the dataset's local metric CRS"),
    ("y", pa.float64(), True, "northing in metres, the dataset's local metric CRS"),
    ("crs", pa.string(), True, "the local metric CRS of x/y (e.g. EPSG:32616)"),
    ("location_precision", pa.string(), False, "exact|block|snapped|area|none"),
    ("h3_7", pa.int64(), True, "H3 cell at resolution 7"),
    ("h3_8", pa.int64(), True, "H3 cell at resolution 8"),
    ("h3_9", pa.int64(), True, "H3 cell at resolution 9"),
    ("address", pa.string(), True, "block-level address as published"),
    ("beat", pa.string(), True, "beat / reporting area"),
    ("district", pa.string(), True, "district / precinct / division"),
    ("ward", pa.string(), True, "ward"),
    ("community_area", pa.string(), True, "community area"),
    ("neighbourhood", pa.string(), True, "neighbourhood"),
    ("lsoa", pa.string(), True, "lower-layer super output area (England and Wales)"),
    ("premises", pa.string(), True, "premises / location type"),
    ("arrest", pa.bool_(), True, "an arrest was made"),
    ("outcome", pa.string(), True, "outcome or resolution as published"),
    ("discovery", pa.string(), False, "reported|police_initiated|unknown"),
    ("suspect_ref", pa.string(), True, "keyed HMAC-SHA-256 pseudonym of the suspect field"),
    ("victim_ref", pa.string(), True, "keyed HMAC-SHA-256 pseudonym of the victim field"),
    ("has_narrative", pa.bool_(), False, "a narrative is held in the restricted table"),
    ("quality_flags", pa.string(), True, "comma-separated data-quality notes (e.g. coords_swapped)"),
    ("extra", pa.string(), True, "remaining raw fields as JSON"),
    ("batch_id", pa.string(), False, "the ingest batch that wrote this version"),
    ("ingested_at", UTC_TS, False, "when this version was written, UTC"),
    ("row_hash", pa.int64(), False, "64-bit hash of the published record, to tell updates from duplicates"),
    # Added in store schema 2 (appended, so stores upgrade with ADD COLUMN and keep column order).
    ("record_kind", pa.string(), False, "crime|stop|arrest|call_for_service|sensor"),
    ("subject_age_band", pa.string(), True, "age band of the person stopped or arrested, as recorded"),
    ("subject_sex", pa.string(), True, "sex or gender of the person stopped or arrested, as recorded"),
    ("subject_ethnicity_self", pa.string(), True, "self-defined ethnicity, as recorded"),
    ("subject_ethnicity_officer", pa.string(), True, "officer-defined ethnicity (or race), as recorded"),
    ("search_hit", pa.bool_(), True, "a search found what it was for (police.uk: outcome linked to object)"),
)

INCIDENT_SCHEMA: Final = pa.schema(
    [pa.field(n, t, nullable=nl) for n, t, nl, _ in INCIDENT_FIELDS]
)
INCIDENT_COLUMNS: Final = tuple(INCIDENT_SCHEMA.names)

#: Columns whose content decides whether a re-published record changed (lineage excluded).
CONTENT_COLUMNS: Final = tuple(
    c for c in INCIDENT_COLUMNS if c not in ("batch_id", "ingested_at", "row_hash")
)

PERSONAL_FIELDS: Final = ("suspect", "victim", "narrative")

PERSONAL_SCHEMA: Final = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("incident_id", pa.string(), nullable=False),
        pa.field("suspect", pa.string()),
        pa.field("victim", pa.string()),
        pa.field("narrative", pa.string()),
        pa.field("batch_id", pa.string(), nullable=False),
    ]
)

QUARANTINE_SCHEMA: Final = pa.schema(
    [
        pa.field("source", pa.string(), nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("line", pa.int64(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("message", pa.string(), nullable=False),
        pa.field("raw", pa.string(), nullable=False),
        pa.field("batch_id", pa.string(), nullable=False),
    ]
)

_ENUMS: Final[dict[str, Sequence[str]]] = {
    "time_precision": TIME_PRECISIONS,
    "location_precision": LOCATION_PRECISIONS,
    "discovery": DISCOVERY,
    "category": tuple(BY_NAME),
    "category_group": GROUPS,
    "category_precision": ("leaf", "rollup", "group"),
    "crimes_against": ("person", "property", "society", "none"),
    "ucr_part1": ("violent", "property", "none"),
    "record_kind": RECORD_KINDS,
}


def empty_incidents() -> pd.DataFrame:
    """An empty canonical incident frame with the right dtypes."""
    frame: pd.DataFrame = INCIDENT_SCHEMA.empty_table().to_pandas()
    return frame


#: Columns added after the first schema, with the value a frame built without them takes.
ADDED_COLUMNS: Final[dict[str, object]] = {
    "record_kind": "crime", **dict.fromkeys(SUBJECT_COLUMNS), "search_hit": None,
}


def with_defaults(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the columns of :data:`ADDED_COLUMNS` filled where it lacks them.

    A frame built for the first schema (no ``record_kind``) holds crimes; a null ``record_kind``
    also means a crime. The frame is returned unchanged when nothing is missing.
    """
    kinds = frame.get("record_kind")
    if all(c in frame.columns for c in ADDED_COLUMNS) and (kinds is None or not kinds.isna().any()):
        return frame
    out = frame.copy()
    for name, default in ADDED_COLUMNS.items():
        if name not in out.columns:
            out[name] = pd.Series(default, index=out.index, dtype="boolean" if name == "search_hit" else object)
    out["record_kind"] = out["record_kind"].fillna("crime")
    return out


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Convert a canonical frame to Arrow with exactly :data:`INCIDENT_SCHEMA`, validating it.

    Columns added after the first schema take their defaults (:func:`with_defaults`).
    """
    frame = with_defaults(frame)
    validate(frame)
    return pa.Table.from_pandas(frame[list(INCIDENT_COLUMNS)], schema=INCIDENT_SCHEMA, preserve_index=False)


def validate(frame: pd.DataFrame) -> None:
    """Check that ``frame`` is a canonical incident table; raise :class:`SchemaError` otherwise.

    Checks column presence, non-null columns, enumerations, coordinate ranges, time-zone
    awareness and the uniqueness of ``(source, incident_id)``. Columns added after the first
    schema may be absent (they take their defaults, :func:`with_defaults`).
    """
    frame = with_defaults(frame)
    missing = [c for c in INCIDENT_COLUMNS if c not in frame.columns]
    if missing:
        raise SchemaError(f"incident table lacks columns: {', '.join(missing)}")
    for name, _, nullable, _ in INCIDENT_FIELDS:
        if not nullable and frame[name].isna().any():
            raise SchemaError(f"column {name!r} must not contain nulls")
    for name, allowed in _ENUMS.items():
        bad = set(frame[name].dropna().unique()) - set(allowed)
        if bad:
            raise SchemaError(f"column {name!r} has values outside its enumeration: {sorted(bad)[:5]}")
    for name in ("occurred_at", "occurred_until", "reported_at", "ingested_at"):
        col = frame[name]
        if len(col) and getattr(col.dt, "tz", None) is None:
            raise SchemaError(f"column {name!r} must be timezone-aware UTC")
    lat, lon = frame["lat"], frame["lon"]
    if ((lat.abs() > 90) | (lon.abs() > 180)).any():
        raise SchemaError("lat/lon out of WGS84 range")
    no_loc = frame["location_precision"] == "none"
    if (lat.notna() & no_loc).any() or (lat.isna() & ~no_loc).any():
        raise SchemaError("location_precision must be 'none' exactly where lat/lon are missing")
    if frame.duplicated(["source", "incident_id"]).any():
        raise SchemaError("(source, incident_id) must be unique")
