"""Portal files from a synthetic city, optionally dirty, with an exact account of the dirt.

``chicago`` is the City of Chicago data portal's CSV export ("Crimes - 2001 to present"): the
same 22 columns in the same order, ``Date`` as ``MM/DD/YYYY hh:mm:ss AM`` in America/Chicago
local time (the city's time zone, so ambiguous autumn hours are written as the portal writes
them, without an offset), X/Y in Illinois State Plane East feet (EPSG:3435, integers, converted
with pyproj), ``Location`` as ``"(lat, lon)"``, ``Arrest``/``Domestic`` as ``true``/``false``,
4-digit beats and 3-digit districts. ``canonical`` is the canonical table as a flat CSV
(timestamps ISO 8601 in UTC, booleans ``true``/``false``).

Dirt (:class:`~crimelens.synth.config.DirtConfig`) gives each flawed row exactly one flaw, so
the counts in the :class:`~crimelens.synth.config.DirtReport` are exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from crimelens.exceptions import InputError
from crimelens.geo.crs import to_local
from crimelens.synth import text
from crimelens.synth.codes import OFFENSES, UNMAPPED_DESCRIPTION, UNMAPPED_IUCR, UNMAPPED_PRIMARY_TYPE
from crimelens.synth.config import CityConfig, DirtConfig, DirtReport
from crimelens.synth.frame import PortalColumns
from crimelens.synth.truth import GroundTruth


class CityData(Protocol):
    """What a portal file is written from (a :class:`~crimelens.synth.city.SyntheticCity`)."""

    config: CityConfig
    incidents: pd.DataFrame
    truth: GroundTruth
    portal_columns: PortalColumns

FORMATS: tuple[str, ...] = ("chicago", "canonical")

#: The Chicago portal's CSV header, in order.
CHICAGO_COLUMNS: tuple[str, ...] = (
    "ID", "Case Number", "Date", "Block", "IUCR", "Primary Type", "Description", "Location Description",
    "Arrest", "Domestic", "Beat", "District", "Ward", "Community Area", "FBI Code", "X Coordinate",
    "Y Coordinate", "Year", "Updated On", "Latitude", "Longitude", "Location",
)

_GARBAGE_DATES = ("not a date", "??/??/???? ??:??:?? ??", "13/45/2020 25:61:00 XM", "N/A")
_DATETIME_COLS = ("occurred_at", "occurred_until", "reported_at", "ingested_at")
_BOOL_COLS = ("attempted", "firearm", "domestic", "hate", "residential", "arrest", "has_narrative")


def write_portal(
    city: CityData, path: str | Path, fmt: str = "chicago", dirt: DirtConfig | None = None
) -> DirtReport:
    """Write the city's incidents as a portal CSV (gzip when ``path`` ends in ``.gz``).

    Parameters
    ----------
    city : CityData
        The generated city.
    path : str or Path
        Output file; ``.csv``, or ``.csv.gz`` for gzip.
    fmt : {"chicago", "canonical"}
        File format.
    dirt : DirtConfig, optional
        Flaws to inject; their exact counts are returned and stored in ``city.truth.dirt``.

    Returns
    -------
    DirtReport
        What was injected (all counts zero without ``dirt``).
    """
    frame, report = portal_frame(city, fmt, dirt)
    text.write_csv(frame, path)
    city.truth.dirt = report.to_dict()
    return report


def portal_frame(
    city: CityData, fmt: str = "chicago", dirt: DirtConfig | None = None
) -> tuple[pd.DataFrame, DirtReport]:
    """The portal frame of ``city`` in format ``fmt`` and the report of the dirt injected."""
    if fmt not in FORMATS:
        raise InputError(f"unknown portal format {fmt!r}; known: {', '.join(FORMATS)}")
    if len(city.incidents) != len(city.portal_columns.offense):
        raise InputError("city.incidents no longer matches the generated city; portal formats need it unchanged")
    frame = _chicago(city) if fmt == "chicago" else _canonical(city)
    report = DirtReport(fmt, len(frame), len(frame))
    if dirt is not None:
        seed = dirt.seed if dirt.seed is not None else city.config.seed
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0xD127]))
        end = pd.Timestamp(city.truth.params["end_utc"]) + pd.Timedelta(days=30)
        later = str(_us_datetime(pd.Series([end]).dt.tz_convert(city.config.timezone)).iloc[0])
        frame = _dirty(frame, fmt, dirt, rng, report, later)
    return frame, report


def _chicago(city: CityData) -> pd.DataFrame:
    inc, pc = city.incidents, city.portal_columns
    tz = city.config.timezone
    occ = inc["occurred_at"].dt.tz_convert(tz)
    rep = inc["reported_at"].dt.tz_convert(tz)
    updated = rep.dt.normalize() + pd.Timedelta(days=7, hours=15, minutes=50, seconds=27)
    first = np.unique(pc.point, return_index=True)[1]
    lat, lon = inc["lat"].to_numpy()[first], inc["lon"].to_numpy()[first]
    fx, fy = to_local(lon, lat, "EPSG:3435")
    lat9, lon9 = np.round(lat, 9), np.round(lon, 9)
    location = [f"({a!r}, {b!r})" for a, b in zip(lat9.tolist(), lon9.tolist(), strict=True)]
    p = pc.point
    return pd.DataFrame({
        "ID": inc["incident_id"].astype("int64").to_numpy(),
        "Case Number": pc.case_number,
        "Date": _us_datetime(occ),
        "Block": inc["address"],
        "IUCR": inc["offense_code"],
        "Primary Type": inc["offense"],
        "Description": text.take([o.description for o in OFFENSES], pc.offense),
        "Location Description": inc["premises"],
        "Arrest": _tf(inc["arrest"]),
        "Domestic": _tf(inc["domestic"]),
        "Beat": inc["beat"],
        "District": inc["district"],
        "Ward": inc["ward"],
        "Community Area": inc["community_area"],
        "FBI Code": text.take([o.fbi_code for o in OFFENSES], pc.offense),
        "X Coordinate": pd.array(np.rint(fx).astype(np.int64)[p], dtype="Int64"),
        "Y Coordinate": pd.array(np.rint(fy).astype(np.int64)[p], dtype="Int64"),
        "Year": occ.dt.year.to_numpy(),
        "Updated On": _us_datetime(updated),
        "Latitude": lat9[p],
        "Longitude": lon9[p],
        "Location": text.take(location, p),
    }, columns=list(CHICAGO_COLUMNS))


def _canonical(city: CityData) -> pd.DataFrame:
    out = city.incidents.copy()
    for col in _DATETIME_COLS:
        out[col] = text.as_text(out[col])
    for col in _BOOL_COLS:
        out[col] = _tf(out[col])
    return out


def _tf(s: pd.Series) -> pd.Series:
    """Booleans as the portal's ``true``/``false`` (missing stays missing)."""
    codes = np.where(s.isna().to_numpy(), -1, s.fillna(False).to_numpy(dtype=bool).astype(np.int64))
    return text.take(["false", "true"], codes)


def _us_datetime(ts: pd.Series) -> pd.Series:
    """Local timestamps as ``MM/DD/YYYY hh:mm:ss AM``, built digit by digit (fast for millions)."""
    n = len(ts)
    ts = ts.dt.tz_localize(None)  # wall-clock time, converted once
    hour = ts.dt.hour.to_numpy()
    h12 = hour % 12
    h12[h12 == 0] = 12
    buf = np.full((n, 22), ord(" "), dtype=np.uint8)
    for pos, ch in ((2, "/"), (5, "/"), (13, ":"), (16, ":")):
        buf[:, pos] = ord(ch)
    fields = ((0, 2, ts.dt.month), (3, 2, ts.dt.day), (6, 4, ts.dt.year), (11, 2, h12),
              (14, 2, ts.dt.minute), (17, 2, ts.dt.second))
    for pos, width, val in fields:
        v = np.asarray(val, dtype=np.int64)
        for i in range(width):
            buf[:, pos + width - 1 - i] = 48 + (v // 10**i) % 10
    buf[:, 20] = np.where(hour < 12, ord("A"), ord("P"))
    buf[:, 21] = ord("M")
    return text.from_arrow(pa.array(buf.view("S22").ravel()).cast(pa.string()))


def _split(total: int, parts: int) -> list[int]:
    return [(total + parts - 1 - i) // parts for i in range(parts)]


def _dirty(frame: pd.DataFrame, fmt: str, dirt: DirtConfig, rng: np.random.Generator,
           report: DirtReport, later: str) -> pd.DataFrame:
    n = len(frame)
    b1899, b2100, btext = _split(round(dirt.bad_dates * n), 3)
    sizes = {
        "missing_coords": round(dirt.missing_coords * n), "zero_coords": round(dirt.zero_coords * n),
        "nan_coords": round(dirt.nan_coords * n), "bad_date_1899": b1899, "bad_date_2100": b2100,
        "bad_date_text": btext, "unmapped_categories": round(dirt.unmapped_categories * n),
        "duplicates": round(dirt.duplicates * n), "changed_duplicates": round(dirt.changed_duplicates * n),
    }
    if sum(sizes.values()) > n:
        raise InputError("too much dirt for this many rows")
    perm = rng.permutation(n)
    rows: dict[str, npt.NDArray[np.int64]] = {}
    at = 0
    for kind, k in sizes.items():
        rows[kind] = np.sort(perm[at:at + k])
        at += k
    out = frame.copy()
    chicago = fmt == "chicago"
    id_col = "ID" if chicago else "incident_id"
    lat, lon = ("Latitude", "Longitude") if chicago else ("lat", "lon")
    proj = ("X Coordinate", "Y Coordinate") if chicago else ("x", "y")
    coord_cols = [lat, lon, *proj, *(["Location"] if chicago else ["h3_7", "h3_8", "h3_9"])]
    date_col = "Date" if chicago else "occurred_at"
    as_text = sizes["nan_coords"] > 0  # the text "NaN" turns the coordinate columns into text
    if as_text:
        out[lat] = text.as_text(out[lat])
        out[lon] = text.as_text(out[lon])
    out.loc[rows["missing_coords"], coord_cols] = None
    z = rows["zero_coords"]
    for col in (lat, lon):
        out.loc[z, col] = "0.0" if as_text else 0.0
    for col in proj:
        out.loc[z, col] = 0
    if chicago:
        out.loc[z, "Location"] = "(0.0, 0.0)"
    nan_rows = rows["nan_coords"]
    out.loc[nan_rows, [lat, lon]] = "NaN"
    out.loc[nan_rows, [c for c in coord_cols if c not in (lat, lon)]] = None
    for kind, year in (("bad_date_1899", "1899"), ("bad_date_2100", "2100")):  # neither is a leap year
        r = rows[kind]
        d = out.loc[r, date_col].astype(str)
        d = d.str.replace("02/29/", "02/28/", regex=False) if chicago else d.str.replace("-02-29T", "-02-28T",
                                                                                          regex=False)
        out.loc[r, date_col] = (d.str[:6] + year + d.str[10:]) if chicago else (year + d.str[4:])
    r = rows["bad_date_text"]
    out.loc[r, date_col] = [_GARBAGE_DATES[i % len(_GARBAGE_DATES)] for i in range(len(r))]
    r = rows["unmapped_categories"]
    if chicago:
        out.loc[r, ["Primary Type", "Description", "IUCR"]] = [UNMAPPED_PRIMARY_TYPE, UNMAPPED_DESCRIPTION,
                                                               UNMAPPED_IUCR]
    else:
        out.loc[r, ["offense", "offense_code", "category"]] = [UNMAPPED_PRIMARY_TYPE, UNMAPPED_IUCR,
                                                              "made_up_offense"]
    dup = out.loc[rows["duplicates"]]
    changed = out.loc[rows["changed_duplicates"]].copy()
    arrest = "Arrest" if chicago else "arrest"
    premises = "Location Description" if chicago else "premises"
    changed[arrest] = np.where(changed[arrest] == "true", "false", "true")
    changed[premises] = np.where(changed[premises] == "OTHER", "STREET", "OTHER")
    if chicago:
        changed["Updated On"] = later
    else:
        changed["row_hash"] = _changed_hash(changed["row_hash"])
    key = np.concatenate([2 * np.arange(n), 2 * rows["duplicates"] + 1, 2 * rows["changed_duplicates"] + 1])
    merged = pd.concat([out, dup, changed], ignore_index=True)
    merged = merged.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    ids = frame[id_col].astype(str).to_numpy()
    report.rows_written = len(merged)
    report.counts = {k: int(v) for k, v in sizes.items()}
    report.ids = {k: ids[v].tolist() for k, v in rows.items()}
    return merged


def _changed_hash(s: pd.Series) -> pd.Series:
    """A different row hash for a changed record (int64 or hex text, as the schema has it)."""
    if pd.api.types.is_integer_dtype(s.dtype):
        return pd.Series(s.to_numpy() ^ np.int64(0x5BD1E995), index=s.index)
    txt = s.astype(str)
    return ("f" + txt.str[1:]).where(~txt.str.startswith("f"), "e" + txt.str[1:])
