"""Mapping files: how one source's columns become the canonical incident table.

A mapping is a TOML document (the shipped presets in ``presets/*.toml`` are written in it; users
write their own for any other portal). See ``docs/mapping.md`` for the format with a worked
example. Top-level keys:

``name``, ``description``, ``timezone`` (IANA), ``crs`` (of projected x/y columns; omit for WGS84),
``detect`` (header columns that identify the source), ``occurred_at_format`` (strptime; detected
when absent), ``occurred_at_local`` (true: the timestamp is local time even when written with a
UTC offset such as ``+00``), ``time_precision``, ``location_precision``, ``require_location``,
``id_strategy`` (``field`` | ``content`` | ``content_ordinal``), ``bbox`` ([min_lon, min_lat,
max_lon, max_lat] of plausible locations), ``discovery``, ``record_kind`` (``crime`` by default;
``stop``, ``arrest``, ``call_for_service``, ``sensor``), ``required`` (canonical fields besides the
time and the offence that a file must have; see :mod:`crimelens.sources.fit`).

Tables: ``[fields]`` canonical name → source column (or a list of columns joined by a space),
``[categories]`` source value → canonical category (case-insensitive; ``"re:<regex>"`` keys are
patterns tried in file order; ``default``), ``[flags]`` flag name → ``"re:<regex>"`` tested on the
category text, ``[values.<field>]`` source value → canonical value for enumerated fields.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crimelens.exceptions import MappingError
from crimelens.schema import (
    AREA_COLUMNS,
    LOCATION_PRECISIONS,
    PERSONAL_FIELDS,
    RECORD_KINDS,
    SUBJECT_COLUMNS,
    TIME_PRECISIONS,
)
from crimelens.taxonomy import BY_NAME, FLAGS

#: Canonical fields a mapping may fill from source columns.
MAPPABLE_FIELDS: tuple[str, ...] = (
    "incident_id", "occurred_at", "occurred_at_hour", "occurred_at_time", "occurred_until", "reported_at",
    "offense", "offense_code", "category_text", "lat", "lon", "x", "y", "address",
    *AREA_COLUMNS, "premises", "arrest", "outcome", "discovery",
    *FLAGS, *PERSONAL_FIELDS, *SUBJECT_COLUMNS, "search_hit",
)

_TOP_KEYS = {
    "name", "description", "timezone", "crs", "detect", "occurred_at_format", "occurred_at_local",
    "time_precision", "location_precision", "require_location", "id_strategy", "bbox", "discovery",
    "fields", "categories", "flags", "values", "reported_at_format", "occurred_until_format",
    "occurred_at_extract", "extends", "record_kind", "required",
}
_ID_STRATEGIES = ("field", "field_or_content", "content", "content_ordinal")


@dataclass(frozen=True, slots=True)
class Mapping:
    """A validated mapping file. Build it with :func:`load_mapping` or :func:`load_preset`."""

    name: str
    timezone: str
    fields: dict[str, tuple[str, ...]]
    categories: dict[str, str]
    patterns: tuple[tuple[re.Pattern[str], str], ...]
    default_category: str | None
    description: str = ""
    crs: str | None = None
    detect: tuple[str, ...] = ()
    occurred_at_format: str | None = None
    reported_at_format: str | None = None
    occurred_until_format: str | None = None
    occurred_at_local: bool = False
    time_precision: str | None = None
    location_precision: str = "exact"
    require_location: bool = False
    id_strategy: str = "content_ordinal"
    bbox: tuple[float, float, float, float] | None = None
    discovery: str = "unknown"
    flags: tuple[tuple[str, str | None, re.Pattern[str]], ...] = ()
    occurred_at_extract: re.Pattern[str] | None = None
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    record_kind: str = "crime"
    required: tuple[str, ...] = ()

    def columns(self) -> set[str]:
        """Every source column this mapping reads."""
        return {c for cols in self.fields.values() for c in cols} | {c for _, c, _ in self.flags if c}

    def missing_columns(self, header: list[str]) -> list[str]:
        """Source columns named by the mapping that ``header`` lacks."""
        have = {h.strip().lower() for h in header}
        return sorted(c for c in self.columns() if c.strip().lower() not in have)


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file.

    Raises
    ------
    MappingError
        On a TOML syntax error (the message gives the line), an unknown key, an unknown canonical
        field or category, or an invalid time zone, CRS name or regex.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MappingError(f"{p}: cannot read mapping file ({exc})") from exc
    return parse_mapping(text, origin=str(p))


def parse_mapping(text: str, *, origin: str = "<mapping>") -> Mapping:
    """Parse mapping TOML ``text``; ``origin`` names it in error messages."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{origin}: TOML syntax error: {exc}") from exc
    return _build(doc, origin)


def _fail(origin: str, msg: str) -> MappingError:
    return MappingError(f"{origin}: {msg}")


def _build(doc: dict[str, Any], origin: str) -> Mapping:
    if "extends" in doc:
        doc = _extend(doc, origin)
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise _fail(origin, f"unknown keys: {', '.join(sorted(unknown))}")
    name = doc.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise _fail(origin, "'name' must be 1-64 letters, digits, '_', '-' or '.'")
    tz = doc.get("timezone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _fail(origin, f"unknown time zone {tz!r}") from exc
    fields = _fields(doc.get("fields", {}), origin)
    if "occurred_at" not in fields:
        raise _fail(origin, "[fields] must name the occurred_at column")
    has_xy = "x" in fields and "y" in fields
    has_ll = "lat" in fields and "lon" in fields
    crs = doc.get("crs")
    if has_xy and not crs:
        raise _fail(origin, "x/y columns need 'crs' (e.g. crs = \"EPSG:3435\")")
    if crs is not None:
        _check_crs(str(crs), origin)
    if doc.get("require_location") and not (has_xy or has_ll):
        raise _fail(origin, "require_location needs lat/lon or x/y fields")
    cats, patterns, default = _categories(doc.get("categories", {}), origin)
    flags = _flags(doc.get("flags", {}), origin)
    tp = doc.get("time_precision")
    if tp is not None and tp not in TIME_PRECISIONS:
        raise _fail(origin, f"time_precision must be one of {', '.join(TIME_PRECISIONS)}")
    lp = doc.get("location_precision", "exact")
    if lp not in LOCATION_PRECISIONS or lp == "none":
        raise _fail(origin, "location_precision must be exact, block, snapped or area")
    ids = doc.get("id_strategy", "field" if "incident_id" in fields else "content_ordinal")
    if ids not in _ID_STRATEGIES:
        raise _fail(origin, f"id_strategy must be one of {', '.join(_ID_STRATEGIES)}")
    if ids in ("field", "field_or_content") and "incident_id" not in fields:
        raise _fail(origin, f"id_strategy {ids!r} needs [fields] incident_id")
    extract = doc.get("occurred_at_extract")
    if extract is not None:
        try:
            extract = re.compile(str(extract))
        except re.error as exc:
            raise _fail(origin, f"occurred_at_extract is not a valid regex: {exc}") from exc
        if extract.groups < 1:
            raise _fail(origin, "occurred_at_extract needs at least one capture group")
    bbox = doc.get("bbox")
    if bbox is not None:
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, int | float) for v in bbox)):
            raise _fail(origin, "bbox must be [min_lon, min_lat, max_lon, max_lat]")
        bbox = tuple(float(v) for v in bbox)
    kind = doc.get("record_kind", "crime")
    if kind not in RECORD_KINDS:
        raise _fail(origin, f"record_kind must be one of {', '.join(RECORD_KINDS)}")
    required = doc.get("required", [])
    if not isinstance(required, list) or not all(r in fields for r in required):
        raise _fail(origin, "'required' must list fields named in [fields]")
    values = doc.get("values", {})
    if not isinstance(values, dict) or not all(isinstance(v, dict) for v in values.values()):
        raise _fail(origin, "[values.<field>] tables map source values to canonical values")
    return Mapping(
        name=name,
        timezone=str(tz),
        fields=fields,
        categories=cats,
        patterns=patterns,
        default_category=default,
        description=str(doc.get("description", "")),
        crs=str(crs) if crs else None,
        detect=tuple(str(c) for c in doc.get("detect", ())),
        occurred_at_format=doc.get("occurred_at_format"),
        reported_at_format=doc.get("reported_at_format"),
        occurred_until_format=doc.get("occurred_until_format"),
        occurred_at_local=bool(doc.get("occurred_at_local", False)),
        time_precision=tp,
        location_precision=lp,
        require_location=bool(doc.get("require_location", False)),
        id_strategy=ids,
        bbox=bbox,
        discovery=str(doc.get("discovery", "unknown")),
        flags=flags,
        occurred_at_extract=extract,
        values={k: {str(a).lower(): str(b) for a, b in v.items()} for k, v in values.items()},
        record_kind=str(kind),
        required=tuple(str(r) for r in required),
    )


def _fields(raw: Any, origin: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        raise _fail(origin, "[fields] must be a table")
    out: dict[str, tuple[str, ...]] = {}
    for key, val in raw.items():
        if key not in MAPPABLE_FIELDS:
            raise _fail(origin, f"[fields] {key!r} is not a canonical field")
        cols = (val,) if isinstance(val, str) else tuple(val) if isinstance(val, list) else None
        if not cols or not all(isinstance(c, str) and c for c in cols):
            raise _fail(origin, f"[fields] {key} must be a column name or a list of column names")
        out[key] = cols
    return out


def _categories(
    raw: Any, origin: str
) -> tuple[dict[str, str], tuple[tuple[re.Pattern[str], str], ...], str | None]:
    if not isinstance(raw, dict):
        raise _fail(origin, "[categories] must be a table")
    exact: dict[str, str] = {}
    patterns: list[tuple[re.Pattern[str], str]] = []
    default = None
    for key, val in raw.items():
        if not isinstance(val, str) or val not in BY_NAME:
            raise _fail(origin, f"[categories] {key!r} maps to unknown category {val!r}")
        if key == "default":
            default = val
        elif key.startswith("re:"):
            try:
                patterns.append((re.compile(key[3:], re.IGNORECASE), val))
            except re.error as exc:
                raise _fail(origin, f"[categories] bad regex {key!r}: {exc}") from exc
        else:
            exact[key.strip().lower()] = val
    return exact, tuple(patterns), default


def _flags(raw: Any, origin: str) -> tuple[tuple[str, str | None, re.Pattern[str]], ...]:
    """``flag = "re:..."`` tests the category text; ``flag = {column = "C", pattern = "re:..."}``
    tests column C."""
    out = []
    for flag, spec in dict(raw).items():
        if flag not in FLAGS:
            raise _fail(origin, f"[flags] {flag!r} is not one of {', '.join(FLAGS)}")
        column = None
        pattern = spec
        if isinstance(spec, dict):
            column, pattern = spec.get("column"), spec.get("pattern")
            if not isinstance(column, str):
                raise _fail(origin, f"[flags] {flag}.column must be a column name")
        if not isinstance(pattern, str) or not pattern.startswith("re:"):
            raise _fail(origin, f"[flags] {flag} must be a \"re:<regex>\" string")
        try:
            out.append((flag, column, re.compile(pattern[3:], re.IGNORECASE)))
        except re.error as exc:
            raise _fail(origin, f"[flags] bad regex for {flag}: {exc}") from exc
    return tuple(out)


def _extend(doc: dict[str, Any], origin: str) -> dict[str, Any]:
    """Merge ``doc`` over the preset it ``extends``: top-level keys and whole tables override."""
    base_name = doc["extends"]
    root = resources.files("crimelens.sources") / "presets"
    res = root / f"{base_name}.toml"
    if not isinstance(base_name, str) or not re.fullmatch(r"[a-z0-9_]+", base_name) or not res.is_file():
        raise _fail(origin, f"extends unknown preset {base_name!r}")
    base = tomllib.loads(res.read_text(encoding="utf-8"))
    base.pop("extends", None)
    merged = {**base, **{k: v for k, v in doc.items() if k != "extends"}}
    return merged


def _check_crs(crs: str, origin: str) -> None:
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        CRS.from_user_input(crs)
    except CRSError as exc:
        raise _fail(origin, f"unknown CRS {crs!r}") from exc


def list_presets() -> list[str]:
    """Names of the shipped presets."""
    root = resources.files("crimelens.sources") / "presets"
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> Mapping:
    """Load a shipped preset by name.

    Raises
    ------
    MappingError
        If there is no such preset; the message lists the available ones.
    """
    root = resources.files("crimelens.sources") / "presets"
    res = root / f"{name}.toml"
    if not re.fullmatch(r"[a-z0-9_]+", name) or not res.is_file():
        raise MappingError(f"unknown preset {name!r}; available: {', '.join(list_presets())}")
    return parse_mapping(res.read_text(encoding="utf-8"), origin=f"preset {name}")
