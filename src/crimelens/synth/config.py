"""Configuration of a synthetic city, its recording bias and the dirt added to portal files.

Every knob of the generator is a field here, so a city is reproduced exactly by its
:class:`CityConfig` (the config is written into the ground truth as ``params["config"]``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

from crimelens.exceptions import InputError
from crimelens.synth.codes import CATEGORY_NAMES

Kind = Literal["realistic", "poisson"]
KINDS: tuple[str, ...] = ("realistic", "poisson")


@dataclass(frozen=True, slots=True)
class RecordingBias:
    """A disc of the city where crimes are recorded with a different probability.

    Every true crime at a location inside the disc is recorded with probability ``inside``,
    elsewhere with ``outside``. Combined with ``kind="poisson"`` this builds "equal true rates,
    biased recording" cities for fairness audits; the truth keeps the recording probability of
    each cell so the true rate can be recovered.

    Parameters
    ----------
    dx_m, dy_m : float
        Centre of the disc as an offset in metres from the city centre (east, north).
    radius_m : float
        Radius of the disc in metres.
    inside, outside : float
        Recording probabilities in (0, 1].
    categories : tuple of str, optional
        Categories the bias applies to; all when empty.
    """

    dx_m: float = 0.0
    dy_m: float = 0.0
    radius_m: float = 5_000.0
    inside: float = 0.5
    outside: float = 1.0
    categories: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("inside", "outside"):
            p = getattr(self, name)
            if not 0.0 < p <= 1.0:
                raise InputError(f"recording_bias.{name} must be in (0, 1], got {p}")
        if self.radius_m <= 0:
            raise InputError("recording_bias.radius_m must be positive")
        _check_categories(self.categories, "recording_bias.categories")


@dataclass(frozen=True, slots=True)
class CityConfig:
    """Everything that defines a synthetic city; the same config and seed give identical frames.

    Parameters
    ----------
    n_incidents : int
        Number of recorded incidents in :attr:`SyntheticCity.incidents` (exact).
    days : int
        Length of the period in days, starting at local midnight of ``start``.
    seed : int
        Random seed. The city's geography depends only on the seed (and the geometry options),
        so cities with the same seed and different ``n_incidents`` share streets and hot spots.
    start : str
        First day, ISO date, in ``timezone``.
    kind : {"realistic", "poisson"}
        ``realistic``: surfaces, hot spots, seasonality, contagion. ``poisson``: a homogeneous
        Poisson process in space and time (uniform exact locations, no hot spots, seasonality or
        contagion), for false-positive tests.
    center : (float, float)
        City centre as (longitude, latitude).
    size_m : float
        Side of the square city in metres.
    timezone : str
        IANA zone of local time (time profiles and the Chicago portal's ``Date``).
    block_m : float
        Spacing of the synthetic street grid; incidents are snapped to block mid-points.
    truth_cell_m : float
        Cell size of the ground-truth grid.
    n_hotspots, n_street_hotspots : int
        Persistent hot spots at neighbourhood scale (sd 150-350 m) and at street scale (sd 40-70 m).
    drifting_hotspot : bool
        Add one hot spot that moves ``drift_km`` in a straight line over the period.
    hotspot_share : float
        Share of a hot-spot-prone category's background that falls in its hot spots (scaled by the
        category's affinity, capped at 0.8).
    branching_ratio : float
        Mean number of near-repeat offspring per incident (= share of incidents that are
        offspring), split over categories in proportion to their contagion multipliers.
    contagion_days : float
        Mean of the exponential delay between a parent and its offspring.
    contagion_m : float
        Standard deviation (per axis) of the Gaussian displacement of an offspring.
    trend_per_year : float
        Multiplicative trend of the background, e.g. -0.05 for 5 % fewer per year.
    police_initiated_share : float
        Share of drug, weapon and prostitution incidents found by police.
    recording_bias : RecordingBias, optional
        A region recorded with a different probability.
    category_shares : dict, optional
        Override of category shares (category -> weight); unnamed categories keep the default.
    truth_categories : tuple of str, optional
        Categories with their own rows in ``truth.intensity`` besides ``"all"``; by default
        burglary and theft (the drifting hot spot's categories; burglary has the strongest
        near-repeat effect). Any category is available through ``truth.expected(category)``.
    """

    n_incidents: int = 50_000
    days: int = 365
    seed: int = 0
    start: str = "2022-01-01"
    kind: Kind = "realistic"
    center: tuple[float, float] = (-87.68, 41.84)
    size_m: float = 30_000.0
    timezone: str = "America/Chicago"
    block_m: float = 100.0
    truth_cell_m: float = 250.0
    n_hotspots: int = 8
    n_street_hotspots: int = 6
    drifting_hotspot: bool = True
    drift_km: float = 4.0
    hotspot_share: float = 0.25
    branching_ratio: float = 0.25
    contagion_days: float = 5.0
    contagion_m: float = 150.0
    trend_per_year: float = 0.0
    police_initiated_share: float = 0.6
    recording_bias: RecordingBias | None = None
    category_shares: dict[str, float] | None = None
    truth_categories: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.n_incidents < 1:
            raise InputError("n_incidents must be at least 1")
        if self.days < 1:
            raise InputError("days must be at least 1")
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"unknown time zone {self.timezone!r}") from None
        try:
            pd.Timestamp(self.start)
        except ValueError:
            raise InputError(f"start must be an ISO date, got {self.start!r}") from None
        lon, lat = self.center
        if not (-180 < lon < 180 and -80 < lat < 84):
            raise InputError("center must be (lon, lat) inside the UTM domain")
        if self.block_m <= 0 or self.size_m < 10 * self.block_m:
            raise InputError("size_m must be at least ten blocks and block_m positive")
        if self.truth_cell_m <= 0:
            raise InputError("truth_cell_m must be positive")
        if min(self.n_hotspots, self.n_street_hotspots) < 0:
            raise InputError("hot spot counts must not be negative")
        if not 0.0 <= self.branching_ratio < 0.8:
            raise InputError("branching_ratio must be in [0, 0.8)")
        if self.contagion_days <= 0 or self.contagion_m <= 0:
            raise InputError("contagion_days and contagion_m must be positive")
        for name in ("hotspot_share", "police_initiated_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1]")
        if self.category_shares:
            _check_categories(tuple(self.category_shares), "category_shares")
            if any(v < 0 for v in self.category_shares.values()):
                raise InputError("category_shares must not be negative")
        if self.truth_categories:
            _check_categories(self.truth_categories, "truth_categories")

    @property
    def realistic(self) -> bool:
        """True for the realistic kind."""
        return self.kind == "realistic"

    def to_dict(self) -> dict[str, Any]:
        """The config as JSON-able data."""
        d = asdict(self)
        d["center"] = list(self.center)
        if self.recording_bias is not None:
            d["recording_bias"]["categories"] = list(self.recording_bias.categories)
        if self.truth_categories is not None:
            d["truth_categories"] = list(self.truth_categories)
        return d


@dataclass(frozen=True, slots=True)
class DirtConfig:
    """Which flaws :func:`crimelens.synth.write_portal` adds to a portal file, as shares of rows.

    Each flawed row has exactly one flaw, and the exact count of each is reported in a
    :class:`crimelens.synth.DirtReport` (also stored as ``truth.dirt``), so ingest tests can check
    that exactly those rows were quarantined, deduplicated or updated.

    Parameters
    ----------
    missing_coords : float
        Rows whose coordinate fields are all empty.
    zero_coords : float
        Rows at 0, 0 (a common sentinel).
    nan_coords : float
        Rows with the text ``NaN`` as latitude/longitude and no projected coordinates.
    bad_dates : float
        Rows whose date is in 1899, in 2100 or unparseable text (a third each).
    duplicates : float
        Exact copies of clean rows, appended next to the original.
    changed_duplicates : float
        Copies of clean rows with the same ID and changed content (arrest flipped, another
        premises, later update time): an update of the original.
    unmapped_categories : float
        Rows whose offence is one no preset can know (``MADE UP OFFENSE``).
    seed : int, optional
        Seed of the dirt; by default derived from the city's seed.
    """

    missing_coords: float = 0.01
    zero_coords: float = 0.002
    nan_coords: float = 0.001
    bad_dates: float = 0.003
    duplicates: float = 0.005
    changed_duplicates: float = 0.002
    unmapped_categories: float = 0.002
    seed: int | None = None

    def __post_init__(self) -> None:
        shares = [v for k, v in asdict(self).items() if k != "seed"]
        if any(not 0.0 <= v <= 1.0 for v in shares):
            raise InputError("dirt shares must be in [0, 1]")
        if sum(shares) > 0.5:
            raise InputError("dirt shares add up to more than half of the rows")


@dataclass(slots=True)
class DirtReport:
    """Exactly what dirt was injected into one portal file.

    ``counts`` maps each flaw (``missing_coords``, ``zero_coords``, ``nan_coords``,
    ``bad_date_1899``, ``bad_date_2100``, ``bad_date_text``, ``duplicates``,
    ``changed_duplicates``, ``unmapped_categories``) to its number of rows, and ``ids`` to the
    incident IDs affected. ``rows_clean`` is the number of incidents and ``rows_written`` the
    number of data rows in the file (incidents plus the appended copies).
    """

    format: str
    rows_clean: int
    rows_written: int
    counts: dict[str, int] = field(default_factory=dict)
    ids: dict[str, list[str]] = field(default_factory=dict)

    @property
    def bad_dates(self) -> int:
        """Rows with an implausible or unparseable date (all three kinds)."""
        return sum(self.counts.get(k, 0) for k in ("bad_date_1899", "bad_date_2100", "bad_date_text"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {"format": self.format, "rows_clean": self.rows_clean, "rows_written": self.rows_written,
                "counts": dict(self.counts), "ids": {k: list(v) for k, v in self.ids.items()}}


def _check_categories(names: tuple[str, ...], what: str) -> None:
    bad = [n for n in names if n not in CATEGORY_NAMES]
    if bad:
        raise InputError(f"{what}: unknown or unsupported categories {bad}; known: {', '.join(CATEGORY_NAMES)}")
