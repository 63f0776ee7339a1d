"""A city's own gazetteer, learned from its incident records, and place names resolved in text.

News items and press releases name places the way people do ("the 6300 block of South Halsted
Street", "on Halsted", "in Englewood"); the city's incident data already holds those names with
coordinates: block addresses (``063XX S HALSTED ST``, ``0 Block of MARKET ST``) and named areas
(neighbourhoods). :meth:`Gazetteer.learn` reads them into

* **blocks** -- (street, hundred) → the median point of the incidents on that block;
* **streets** -- street name with its type (``HALSTED ST``) → the median point of its incidents;
* **areas** -- textual area names (``neighbourhood``, ``community_area`` names...) → median point.

:meth:`Gazetteer.resolve` finds the most precise mention in a text: a block ("6300 block of
S Halsted St", precision ``block``), else a street with its type word ("Halsted Street",
precision ``street``: a point somewhere on a long line, the centre of its incidents), else an
area name (precision ``area``), else nothing (``none``). Street types are normalised to USPS
abbreviations (Street → ST, Avenue → AVE...). Medians (not means) keep one mis-geocoded record
from moving a place. Only names seen at least ``min_count`` times are learned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

import pandas as pd

#: Street type words and their USPS abbreviations (Publication 28, appendix C1), the common ones.
STREET_TYPES: Final = {
    "STREET": "ST", "ST": "ST", "AVENUE": "AVE", "AVE": "AVE", "AV": "AVE", "BOULEVARD": "BLVD", "BLVD": "BLVD",
    "ROAD": "RD", "RD": "RD", "DRIVE": "DR", "DR": "DR", "PLACE": "PL", "PL": "PL", "COURT": "CT", "CT": "CT",
    "LANE": "LN", "LN": "LN", "PARKWAY": "PKWY", "PKWY": "PKWY", "TERRACE": "TER", "TER": "TER",
    "HIGHWAY": "HWY", "HWY": "HWY", "EXPRESSWAY": "EXPY", "EXPY": "EXPY", "WAY": "WAY", "SQUARE": "SQ",
    "SQ": "SQ", "CIRCLE": "CIR", "CIR": "CIR", "ALLEY": "ALY", "ALY": "ALY", "CRESCENT": "CRES", "CRES": "CRES",
}
_DIRS: Final = {"N": "N", "S": "S", "E": "E", "W": "W", "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W"}
#: "063XX", "0 Block of", "1200 BLOCK OF", "1234": the house or block number before a street.
_NUMBER = re.compile(r"^\s*(\d+)(?:X+)?\s+(?:BLOCK\s+OF\s+)?", re.IGNORECASE)
_XX = re.compile(r"^\s*(\d+)X+\s", re.IGNORECASE)
PRECISIONS: Final = ("block", "street", "area", "none")


@dataclass(frozen=True, slots=True)
class Place:
    """A resolved mention: the text matched, its kind/precision, and a point (WGS84)."""

    name: str
    precision: str
    lat: float | None
    lon: float | None


NO_PLACE: Final = Place("", "none", None, None)


def normalise_street(text: str) -> str:
    """Upper case, single spaces, street types abbreviated, directions dropped (``S HALSTED STREET`` →
    ``HALSTED ST``)."""
    words = re.sub(r"[^A-Za-z0-9 ]+", " ", text).upper().split()
    if words and words[0] in _DIRS and len(words) > 1:
        words = words[1:]
    return " ".join(STREET_TYPES.get(w, w) for w in words)


def _normalise_text(text: str) -> str:
    """Upper case, punctuation as spaces, street types and directions abbreviated (for searching)."""
    words = re.sub(r"[^A-Za-z0-9 ]+", " ", text).upper().split()
    return " ".join(STREET_TYPES.get(w, _DIRS.get(w, w)) for w in words)


def split_address(address: str) -> tuple[int | None, str]:
    """``(hundred, street)`` of a block or house address (``063XX S HALSTED ST`` → ``(6300, "HALSTED ST")``)."""
    m = _NUMBER.match(address)
    if not m:
        return None, normalise_street(address)
    number = int(m.group(1))
    hundred = number * 100 if _XX.match(address) else (number // 100) * 100
    return hundred, normalise_street(address[m.end():])


@dataclass
class Gazetteer:
    """Blocks, streets and areas of one city with a point each (see the module docstring)."""

    blocks: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)
    streets: dict[str, tuple[float, float]] = field(default_factory=dict)
    areas: dict[str, tuple[float, float]] = field(default_factory=dict)
    _street_re: re.Pattern[str] | None = field(default=None, repr=False)
    _area_re: re.Pattern[str] | None = field(default=None, repr=False)

    @classmethod
    def learn(cls, incidents: pd.DataFrame, *, area_columns: tuple[str, ...] = ("neighbourhood",),
              min_count: int = 2) -> Gazetteer:
        """Learn from canonical incidents (``address``, ``lat``, ``lon`` and textual area columns)."""
        frame = incidents[incidents["lat"].notna() & incidents["lon"].notna()]
        gaz = cls()
        if "address" in frame and len(frame):
            parts = [split_address(str(a)) for a in frame["address"].fillna("")]
            addr = pd.DataFrame({"hundred": [p[0] for p in parts], "street": [p[1] for p in parts],
                                 "lat": frame["lat"].to_numpy(float), "lon": frame["lon"].to_numpy(float)})
            typed = addr[addr["street"].str.split().str[-1].isin(set(STREET_TYPES.values()))
                         & (addr["street"].str.len() >= 4)]
            gaz.streets = {str(k): v for k, v in _medians(typed, ["street"], min_count).items()}
            blocks = typed.dropna(subset=["hundred"]).astype({"hundred": int})
            gaz.blocks = {(str(k[0]), int(k[1])): v for k, v in _medians(blocks, ["street", "hundred"], min_count,
                                                                         ).items() if isinstance(k, tuple)}
        for col in area_columns:
            if col in frame:
                names = frame[col].astype("string").str.strip()
                textual = frame.assign(area=names.str.upper())[names.str.contains(r"[A-Za-z]{3}", na=False)]
                gaz.areas.update({str(k): v for k, v in _medians(textual, ["area"], min_count).items()})
        return gaz

    def _patterns(self) -> tuple[re.Pattern[str] | None, re.Pattern[str] | None]:
        if self._street_re is None and self.streets:
            names = sorted(self.streets, key=len, reverse=True)  # longest first: "N LAKE SHORE DR" over "LAKE"
            self._street_re = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
        if self._area_re is None and self.areas:
            names = sorted(self.areas, key=len, reverse=True)
            self._area_re = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
        return self._street_re, self._area_re

    def resolve(self, text: str) -> Place:
        """The most precise place named in ``text`` (block, then street, then area), or ``NO_PLACE``."""
        norm = _normalise_text(text)
        streets, areas = self._patterns()
        if streets is not None:
            for m in re.finditer(r"\b(\d{1,5}) BLOCK OF ((?:[NSEW] )?)", norm):
                hit = streets.match(norm, m.end())
                if hit:
                    hundred = (int(m.group(1)) // 100) * 100
                    point = self.blocks.get((hit.group(1), hundred))
                    if point is not None:
                        return Place(f"{hundred} block of {hit.group(1)}", "block", *point)
            hit = streets.search(norm)
            if hit:
                return Place(hit.group(1), "street", *self.streets[hit.group(1)])
        if areas is not None:
            hit = areas.search(" ".join(re.sub(r"[^A-Z0-9 ]+", " ", text.upper()).split()))
            if hit:
                return Place(hit.group(1), "area", *self.areas[hit.group(1)])
        return NO_PLACE

    def __len__(self) -> int:
        return len(self.blocks) + len(self.streets) + len(self.areas)


def _medians(frame: pd.DataFrame, keys: list[str], min_count: int) -> dict[object, tuple[float, float]]:
    if frame.empty:
        return {}
    grouped = frame.groupby(keys, sort=False)
    stats = grouped[["lat", "lon"]].median()
    stats = stats[grouped.size() >= min_count]
    lats, lons = stats["lat"].to_numpy(float), stats["lon"].to_numpy(float)
    return {k: (float(a), float(b)) for k, a, b in zip(stats.index, lats, lons, strict=True)}
