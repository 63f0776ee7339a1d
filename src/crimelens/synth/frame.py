"""Turn simulated crimes into the canonical incident table, with every mark a record carries.

For each recorded crime the generator draws, from :mod:`crimelens.synth.codes`: the IUCR code
within its category, the premises, whether police found it (drug, weapon and prostitution
offences, ``police_initiated_share`` of them), arrest and domestic flags, and the delay until it
was reported (log-normal around the category's median; none for police-initiated ones).

Location columns are computed once per distinct point (block points in a realistic city), so
the WGS84 projection, the H3 cells and the addresses cost little even for a million rows.
IDs follow Chicago's habits: a running number in time order (homicides have their own,
lower series) and a case number of two letters per year plus six digits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import h3.api.basic_int as h3i
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crimelens.geo.crs import to_wgs84
from crimelens.schema import INCIDENT_COLUMNS, INCIDENT_SCHEMA, SUBJECT_COLUMNS
from crimelens.synth import text
from crimelens.synth.codes import CATEGORY_NAMES, OFFENSES, PROFILES, RESIDENTIAL_PREMISES
from crimelens.synth.config import CityConfig
from crimelens.synth.layout import IntArray
from crimelens.synth.process import Clock, Simulation
from crimelens.synth.surface import Surface
from crimelens.taxonomy import BY_NAME

FIRST_ID = 12_000_001
FIRST_HOMICIDE_ID = 25_001
_CASE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True, slots=True)
class PortalColumns:
    """Per-row values a portal file needs that the canonical table does not hold."""

    offense: IntArray  # index into OFFENSES
    point: IntArray  # index of the row's distinct location in ``lat``/``lon`` of the frame
    case_number: pd.Series


def build_incidents(
    cfg: CityConfig, surface: Surface, clock: Clock, sim: Simulation, rng: np.random.Generator
) -> tuple[pd.DataFrame, PortalColumns, pd.DataFrame]:
    """The canonical incident frame, the portal-only columns and the lineage of each incident."""
    ev, k = sim.events, sim.kept
    n = len(k)
    cat = ev.cat[k]
    layout = surface.layout
    offense = _draw_offense(rng, cat)
    premises = _draw_premises(rng, cat)
    police_cat = np.array([PROFILES[c].police_initiated for c in CATEGORY_NAMES])[cat]
    police = police_cat & (rng.random(n) < cfg.police_initiated_share)
    arrest_p = np.array([o.arrest for o in OFFENSES])[offense]
    arrest = rng.random(n) < np.where(police, np.maximum(arrest_p, 0.9), arrest_p)
    domestic = rng.random(n) < np.array([o.domestic for o in OFFENSES])[offense]
    delay_h = np.array([PROFILES[c].delay_hours for c in CATEGORY_NAMES])[cat]
    delay_min = np.where(police, 0.0, np.floor(delay_h * 60 * rng.lognormal(0.0, 1.0, n)))

    start_us = clock.start_utc.value // 1_000
    minutes = np.floor(ev.t[k] * 60.0).astype(np.int64)
    ingested_us = (clock.end_utc + pd.Timedelta(days=1)).value // 1_000
    occurred_us = start_us + minutes * 60_000_000
    reported_us = np.minimum(occurred_us + delay_min.astype(np.int64) * 60_000_000, ingested_us)

    blocks, block_of_row = np.unique(ev.block[k], return_inverse=True)
    block_of_row = block_of_row.ravel().astype(np.int64)
    if cfg.realistic:  # located at block points: one distinct point per block
        point = block_of_row
        ux, uy = layout.bx[blocks], layout.by[blocks]
    else:
        point = np.arange(n, dtype=np.int64)
        ux, uy = ev.x[k], ev.y[k]
    ulon, ulat = to_wgs84(ux, uy, layout.crs)
    cells = _h3(ulat, ulon)
    addresses = layout.addresses(blocks)

    ids = _incident_ids(cat)
    id_text = text.numbers(ids)
    year = pd.DatetimeIndex(occurred_us.astype("datetime64[us]")).tz_localize("UTC").tz_convert(cfg.timezone).year
    case_number = _case_numbers(year.to_numpy().astype(np.int64))

    off_extra = [json.dumps({"description": o.description, "fbi_code": o.fbi_code}) for o in OFFENSES]
    off_attempt = np.array(["ATTEMPT" in o.description for o in OFFENSES])
    off_firearm = np.array(["HANDGUN" in o.description or "FIREARM" in o.description for o in OFFENSES])
    tax = [BY_NAME[c] for c in CATEGORY_NAMES]
    vocab, prem_code = premises

    def utc(us: npt.NDArray[np.int64]) -> pd.Series:
        return pd.Series(us.astype("datetime64[us]")).dt.tz_localize("UTC")

    def nullable(a: npt.NDArray[np.bool_]) -> pd.Series:
        return pd.Series(a, dtype="boolean")

    def const(value: str | None) -> pd.Series:
        return text.constant(value, n)

    content = _mix(minutes, np.rint(ux[point] * 100), np.rint(uy[point] * 100), offense,
                   prem_code, arrest, domestic, police, delay_min.astype(np.int64))
    data: dict[str, object] = {
        "source": const("synthetic"),
        "incident_id": id_text,
        "occurred_at": utc(occurred_us),
        "occurred_until": pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]"),
        "time_precision": const("minute"),
        "reported_at": utc(reported_us),
        "offense": text.take([o.primary_type for o in OFFENSES], offense),
        "offense_code": text.take([o.iucr for o in OFFENSES], offense),
        "category": text.take(CATEGORY_NAMES, cat),
        "category_group": text.take([t.group for t in tax], cat),
        "category_precision": text.take([t.precision for t in tax], cat),
        "crimes_against": text.take([t.crimes_against for t in tax], cat),
        "ucr_part1": text.take([t.ucr_part1 for t in tax], cat),
        "attempted": nullable(off_attempt[offense]),
        "firearm": nullable(off_firearm[offense]),
        "domestic": nullable(domestic),
        "hate": pd.Series(pd.NA, index=range(n), dtype="boolean"),
        "residential": nullable(np.isin(vocab, list(RESIDENTIAL_PREMISES))[prem_code]),
        "lat": ulat[point],
        "lon": ulon[point],
        "x": ux[point],
        "y": uy[point],
        "crs": const(layout.crs),
        "location_precision": const("block" if cfg.realistic else "exact"),
        "h3_7": cells[7][point],
        "h3_8": cells[8][point],
        "h3_9": cells[9][point],
        "address": text.take(addresses, block_of_row),
        "premises": text.take(vocab, prem_code),
        "arrest": nullable(arrest),
        "outcome": const(None),
        "discovery": text.take(["reported", "police_initiated"], police.astype(np.int64)),
        "suspect_ref": const(None),
        "victim_ref": const(None),
        "has_narrative": np.zeros(n, dtype=bool),
        "quality_flags": const(None),
        "extra": text.take(off_extra, offense),
        "batch_id": const("synthetic"),
        "ingested_at": utc(np.full(n, ingested_us, dtype=np.int64)),
        "row_hash": _hash_column(content),
        "neighbourhood": const(None),
        "lsoa": const(None),
        "record_kind": const("crime"),
        **{c: const(None) for c in SUBJECT_COLUMNS},
        "search_hit": pd.Series(pd.NA, index=range(n), dtype="boolean"),
    }
    row_block = ev.block[k]
    for area, (area_names, area_code) in surface.areas.items():
        data[area] = text.take(area_names, area_code[row_block])
    frame = pd.DataFrame({c: data[c] for c in INCIDENT_COLUMNS})
    return frame, PortalColumns(offense, point, case_number), _lineage(sim, ids, id_text)


def _draw_offense(rng: np.random.Generator, cat: IntArray) -> IntArray:
    """An IUCR code (index into OFFENSES) for each incident, by weight within its category."""
    out = np.empty(len(cat), dtype=np.int64)
    u = rng.random(len(cat))
    for i, name in enumerate(CATEGORY_NAMES):
        m = cat == i
        if not m.any():
            continue
        rows = np.array([j for j, o in enumerate(OFFENSES) if o.category == name], dtype=np.int64)
        cum = np.cumsum([OFFENSES[j].weight for j in rows])
        out[m] = rows[np.minimum(np.searchsorted(cum, u[m] * cum[-1]), len(rows) - 1)]
    return out


def _draw_premises(rng: np.random.Generator, cat: IntArray) -> tuple[list[str], IntArray]:
    """The premises vocabulary and each incident's premises as a code into it."""
    vocab = sorted({p for prof in PROFILES.values() for p, _ in prof.premises})
    code_of = {p: i for i, p in enumerate(vocab)}
    codes = np.empty(len(cat), dtype=np.int64)
    u = rng.random(len(cat))
    for i, name in enumerate(CATEGORY_NAMES):
        m = cat == i
        if not m.any():
            continue
        prem = PROFILES[name].premises
        cum = np.cumsum([w for _, w in prem])
        pick = np.minimum(np.searchsorted(cum, u[m] * cum[-1]), len(prem) - 1)
        codes[m] = np.array([code_of[p] for p, _ in prem], dtype=np.int64)[pick]
    return vocab, codes


def _h3(lat: npt.NDArray[np.float64], lon: npt.NDArray[np.float64]) -> dict[int, npt.NDArray[np.int64]]:
    """H3 cell of each point at resolution 9 and its parents at 8 and 7 (nested, as the ingest stores them)."""
    r9 = np.fromiter((h3i.latlng_to_cell(a, b, 9) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)),
                     dtype=np.int64, count=len(lat))
    return {9: r9, 8: _h3_parent(r9, 8), 7: _h3_parent(r9, 7)}


def _h3_parent(cells: npt.NDArray[np.int64], res: int) -> npt.NDArray[np.int64]:
    """Parent cells at ``res``: set the resolution field (bits 52-55), fill finer digits with 7."""
    c = cells.view(np.uint64) & ~np.uint64(0xF << 52) | np.uint64(res << 52)
    for r in range(res + 1, 16):
        c |= np.uint64(7 << ((15 - r) * 3))
    return c.view(np.int64)


def _incident_ids(cat: IntArray) -> npt.NDArray[np.int64]:
    """Running IDs in time order; homicides have their own lower series, as in Chicago."""
    homicide = cat == CATEGORY_NAMES.index("homicide")
    num = FIRST_ID + np.cumsum(~homicide) - 1
    num[homicide] = FIRST_HOMICIDE_ID + np.arange(int(homicide.sum()))
    return num.astype(np.int64)


def _case_numbers(year: npt.NDArray[np.int64]) -> pd.Series:
    """Two letters per year (Chicago's series: 2015 = HY, 2017 = JA) and a running six-digit number."""
    first = int(year.min()) if len(year) else 0
    years = np.arange(first, int(year.max()) + 1 if len(year) else first)
    inv = year - first
    n = len(_CASE_LETTERS)
    base = _CASE_LETTERS.index("H") * n + _CASE_LETTERS.index("Y")
    prefixes = []
    for y in years.tolist():
        i = (base + y - 2015) % (n * n)
        prefixes.append(_CASE_LETTERS[i // n] + _CASE_LETTERS[i % n])
    order = np.argsort(inv, kind="stable")
    rank = np.empty(len(year), dtype=np.int64)
    counts = np.bincount(inv, minlength=len(years))
    rank[order] = np.arange(len(year)) - np.repeat(np.cumsum(counts) - counts, counts)
    prefix = pa.array(prefixes, type=pa.string()).take(pa.array(inv.astype(np.int64)))
    number = pa.array(100_000 + rank).cast(pa.string())
    return text.from_arrow(pc.binary_join_element_wise(prefix, number, ""))


def _mix(*cols: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """A 64-bit hash of the given integer columns, row by row (splitmix64 finaliser)."""
    h = np.full(len(np.asarray(cols[0])), 0x9E3779B97F4A7C15, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            h ^= np.asarray(c).astype(np.int64).view(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
            h ^= h >> np.uint64(30)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(27)
            h *= np.uint64(0x94D049BB133111EB)
            h ^= h >> np.uint64(31)
    return h


def _hash_column(h: npt.NDArray[np.uint64]) -> object:
    """The row hash in the schema's type: int64, or 16 hex digits where the schema has a string."""
    if INCIDENT_SCHEMA.field("row_hash").type == "int64":
        return h.view(np.int64)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    shifts = np.arange(60, -4, -4, dtype=np.uint64)
    nib = ((h[:, None] >> shifts) & np.uint64(15)).astype(np.intp)
    return text.from_arrow(pa.array(np.ascontiguousarray(digits[nib]).view("S16").ravel()).cast(pa.string()))


def _lineage(sim: Simulation, ids: npt.NDArray[np.int64], id_text: pd.Series) -> pd.DataFrame:
    ev, k = sim.events, sim.kept
    pos = np.full(len(ev), -1, dtype=np.int64)
    pos[k] = np.arange(len(k))
    parent = ev.parent[k]
    ppos = np.where(parent >= 0, pos[np.maximum(parent, 0)], -1)
    comp = ev.component[k]
    return pd.DataFrame({
        "incident_id": id_text,
        "generation": ev.generation[k],
        "parent_id": text.take(pa.array(ids).cast(pa.string()), ppos),
        "component": text.take(["offspring", "background", "hotspot"], np.sign(comp) + 1),
        "hotspot_id": pd.Series(np.where(comp > 0, comp - 1, 0), dtype="Int64").mask(comp <= 0),
    })
