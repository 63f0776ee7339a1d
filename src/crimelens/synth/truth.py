"""The ground truth of a synthetic city: parameters, hot spots, expected intensity, contagion.

``expected`` in :attr:`GroundTruth.intensity` is the expected number of *recorded* incidents
(the ones in ``city.incidents``) of a category in a cell of :attr:`GroundTruth.grid` during one
UTC week (Monday 00:00 to Monday 00:00), computed from the true intensity, not from the sample:

    background_c(cell, w) = keep · n_c · F_c(w) · Σ_{b ∈ cell} r_c(b) · S_c(b, w)

with ``n_c`` true background crimes of category ``c``, ``F_c(w)`` the share of its background
time density in week ``w``, ``S_c`` its distribution over block points (diffuse surface + hot
spots; the drifting hot spot's part changes weekly), ``r_c`` the recording probability and
``keep`` the final thinning to exactly ``n_incidents``.

**Contagion** enters ``expected`` through its mean (unconditional) contribution. In time it is
exact: the descendants of one crime (all generations) arrive at rate ``θ ω e^{-(1-θ) ω u}`` after
it, so the hourly background is convolved with that density before summing over weeks; this
shifts descendants into later weeks and drops those that would fall after the period. In space
descendants are attributed to their ancestor's cell: the displacement (150 m by default) is small
next to a 250 m cell, and offspring lost beyond the city edge are ignored (under 1 % for cities of
a few kilometres and more). So ``expected`` is what a forecaster without knowledge of recent
events should aim at; one that uses recent events can beat it locally. ``background`` is the same
without contagion. ``expected`` sums to the number of incidents up to the randomness of the
cascades.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import fftconvolve

from crimelens.geo.crs import FloatArray, to_wgs84
from crimelens.geo.grid import SquareGrid
from crimelens.synth.codes import CATEGORY_NAMES, DRIFT_CATEGORIES
from crimelens.synth.config import CityConfig
from crimelens.synth.process import Clock, Simulation, drift_blocks
from crimelens.synth.surface import RESIDENTS_PER_KM2, Surface, record_probability

_INTENSITY_COLUMNS = ("cell_id", "week_start", "category", "expected", "background")
_HOTSPOT_CELL_COLUMNS = ("cell_id", "category", "kind", "hotspot_id", "start", "end", "lift")


@dataclass(frozen=True, slots=True)
class IntensityFactors:
    """The expected intensity in factored form: week × cell matrices are built on demand."""

    weeks: pd.DatetimeIndex
    n_cells: int
    time: FloatArray  # (categories, weeks): expected incidents, background plus descendants
    time_background: FloatArray  # (categories, weeks): background only
    static_space: FloatArray  # (categories, cells): static part of the spatial distribution
    drift_share: FloatArray  # (categories,): share of the background in the drifting hot spot
    drift_space: dict[int, FloatArray] = field(default_factory=dict)  # category -> (weeks, cells)

    def matrix(self, category: str, background: bool = False) -> FloatArray:
        """Expected recorded incidents, ``(weeks, cells)``, of one category or ``"all"``."""
        cats = range(len(CATEGORY_NAMES)) if category == "all" else [CATEGORY_NAMES.index(category)]
        time = self.time_background if background else self.time
        out = np.zeros((len(self.weeks), self.n_cells))
        for c in cats:
            out += np.outer(time[c], self.static_space[c])
            if c in self.drift_space:
                out += self.drift_share[c] * time[c][:, None] * self.drift_space[c]
        return out


@dataclass(slots=True)
class GroundTruth:
    """What is true about a synthetic city (see the module docstring for ``intensity``).

    Attributes
    ----------
    params : dict
        JSON-able parameters: the config, derived rates per category, counts of true, background,
        offspring and recorded crimes, the thinning factor.
    grid : SquareGrid
        The truth grid (``truth_cell_m`` cells covering the city, edges on multiples of 1 km).
    hotspots : DataFrame
        One row per hot spot: id, kind, categories, sd, start and end centre (metres and WGS84).
    hotspot_cells : DataFrame
        ``cell_id, category, kind, hotspot_id, start, end, lift``: cells where a hot spot at least
        doubles the category's background (``lift`` = (hot spot + diffuse) / diffuse) and holds at
        least 2 % of its mass; ``start``/``end`` bound the weeks it does so (the whole period
        except for the drifting hot spot).
    contagion : dict
        ``branching_ratio`` (mean offspring per crime = share of crimes that are offspring),
        ``by_category``, ``time_scale_days`` (mean of the exponential delay), ``distance_scale_m``
        (sd per axis of the Gaussian displacement), kernels and realised offspring share.
    covariates : DataFrame
        Per cell: centre, synthetic residents, mean commercial and deprivation scores, block
        count and recording probability.
    lineage : DataFrame or None
        Per incident: ``generation`` (0 = background), ``parent_id`` (when the parent was
        recorded), ``component`` (background, hotspot, offspring), ``hotspot_id``. Not written.
    dirt : dict or None
        The last :class:`~crimelens.synth.DirtReport` written for this city.
    """

    params: dict[str, Any]
    grid: SquareGrid
    hotspots: pd.DataFrame
    hotspot_cells: pd.DataFrame
    contagion: dict[str, Any]
    covariates: pd.DataFrame
    lineage: pd.DataFrame | None = None
    dirt: dict[str, Any] | None = None
    factors: IntensityFactors | None = field(default=None, repr=False)
    _intensity: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def intensity_categories(self) -> tuple[str, ...]:
        """Categories with their own rows in :attr:`intensity` (``"all"`` always has rows)."""
        return tuple(self.params.get("truth_categories", ()))

    @property
    def intensity(self) -> pd.DataFrame:
        """``cell_id, week_start, category, expected, background`` for ``"all"`` and
        :attr:`intensity_categories` (built on first use)."""
        if self._intensity is None:
            parts = [self.expected(c) for c in ("all", *self.intensity_categories)]
            self._intensity = pd.concat(parts, ignore_index=True)
        return self._intensity

    def expected(self, category: str = "all") -> pd.DataFrame:
        """The intensity rows of one category (any category, or ``"all"``)."""
        if self.factors is None:
            got = self.intensity
            return got[got["category"] == category].reset_index(drop=True)
        if category != "all" and category not in CATEGORY_NAMES:
            from crimelens.exceptions import InputError

            raise InputError(f"unknown category {category!r}")
        f = self.factors
        exp = f.matrix(category)
        bg = f.matrix(category, background=True)
        n_w = len(f.weeks)
        n_rows = n_w * f.n_cells
        levels = ("all", *CATEGORY_NAMES)
        return pd.DataFrame({
            "cell_id": np.tile(np.arange(f.n_cells, dtype=np.int64), n_w),
            "week_start": f.weeks.repeat(f.n_cells).as_unit("us"),
            "category": pd.Categorical.from_codes(np.full(n_rows, levels.index(category)), categories=pd.Index(levels)),
            "expected": exp.ravel(),
            "background": bg.ravel(),
        })

    def to_dict(self) -> dict[str, Any]:
        """Everything but the intensity and the lineage, as JSON-able data."""
        g = self.grid
        cells = self.hotspot_cells.assign(start=self.hotspot_cells["start"].astype(str),
                                          end=self.hotspot_cells["end"].astype(str))
        return {
            "params": self.params,
            "grid": {"x0": g.x0, "y0": g.y0, "cell_size": g.cell_size, "nx": g.nx, "ny": g.ny, "crs": g.crs},
            "hotspots": self.hotspots.to_dict(orient="records"),
            "hotspot_cells": cells.to_dict(orient="records"),
            "contagion": self.contagion,
            "covariates": {c: self.covariates[c].tolist() for c in self.covariates.columns},
            "dirt": self.dirt,
        }

    def to_json(self, indent: int | None = None) -> str:
        """The truth (without intensity and lineage) as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent, default=_json_default)

    def write(self, path: str | Path) -> list[Path]:
        """Write the truth as JSON at ``path`` and the intensity beside it as Parquet.

        The Parquet file is named ``<stem>.intensity.parquet`` and referenced in the JSON under
        ``intensity_file``. Returns the paths written.
        """
        p = Path(path)
        side = p.with_name(f"{p.stem}.intensity.parquet")
        doc = self.to_dict()
        doc["intensity_file"] = side.name
        p.write_text(json.dumps(doc, default=_json_default), encoding="utf-8")
        self.intensity.to_parquet(side, index=False)
        return [p, side]

    @classmethod
    def read(cls, path: str | Path) -> GroundTruth:
        """Read a truth written by :meth:`write`."""
        p = Path(path)
        doc = json.loads(p.read_text(encoding="utf-8"))
        g = doc["grid"]
        cells = pd.DataFrame(doc["hotspot_cells"], columns=list(_HOTSPOT_CELL_COLUMNS))
        for col in ("start", "end"):
            cells[col] = pd.to_datetime(cells[col], utc=True)
        side = p.with_name(doc["intensity_file"]) if doc.get("intensity_file") else None
        inten = pd.read_parquet(side) if side is not None and side.exists() else None
        return cls(doc["params"], SquareGrid(g["x0"], g["y0"], g["cell_size"], g["nx"], g["ny"], g["crs"]),
                   pd.DataFrame(doc["hotspots"]), cells, doc["contagion"], pd.DataFrame(doc["covariates"]),
                   None, doc.get("dirt"), None, inten)


def _json_default(o: object) -> object:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, pd.Timestamp):
        return o.isoformat()
    raise TypeError(f"not JSON-able: {type(o).__name__}")


def build_truth(
    cfg: CityConfig, surface: Surface, clock: Clock, sim: Simulation, lineage: pd.DataFrame,
    share: FloatArray, bg_share: FloatArray,
) -> GroundTruth:
    """Assemble the ground truth of a simulated city."""
    layout = surface.layout
    nx = int(np.ceil(layout.size / cfg.truth_cell_m))
    grid = SquareGrid(layout.x0, layout.y0, float(cfg.truth_cell_m), nx, nx, layout.crs)
    n_cat = len(CATEGORY_NAMES)
    hourly = (sim.n_background * sim.keep_fraction)[:, None] * clock.weights
    time_bg = clock.to_weeks(hourly)
    time_all = clock.to_weeks(_with_descendants(hourly, sim.theta, 1.0 / (24.0 * cfg.contagion_days)))
    shares = surface.shares
    drift_idx = [i for i, h in enumerate(surface.hotspots) if h.kind == "drifting"]
    cell_b = grid.cell_of(layout.bx, layout.by)
    static_space = np.zeros((n_cat, grid.n_cells))
    diff_cell = np.zeros((n_cat, grid.n_cells))
    drift_space: dict[int, FloatArray] = {}
    drift_share = np.zeros(n_cat)
    all_b = np.arange(layout.n_blocks)
    if cfg.realistic:
        spots = [surface.gaussian_blocks(h.x, h.y, h.sigma) for h in surface.hotspots]
        drift = drift_blocks(surface, clock)
        for c in range(n_cat):
            r = record_probability(cfg.recording_bias, layout, layout.bx, layout.by, np.full(len(all_b), c))
            dens = (1.0 - shares[c].sum()) * surface.diffuse[c]
            diff_cell[c] = np.bincount(cell_b, dens, grid.n_cells)
            for h, (idx, p) in enumerate(spots):
                if shares[c, h] > 0 and h not in drift_idx:
                    dens[idx] += shares[c, h] * p
            static_space[c] = np.bincount(cell_b, dens * r, grid.n_cells)
            if drift is not None and drift_idx and shares[c, drift_idx[0]] > 0:
                cand, pw = drift
                drift_share[c] = shares[c, drift_idx[0]]
                drift_space[c] = _to_cells(pw * r[cand], cell_b[cand], grid.n_cells)
    else:
        static_space = _uniform_space(cfg, surface, grid)
    factors = IntensityFactors(clock.week_starts.tz_convert("UTC"), grid.n_cells, time_all, time_bg,
                               static_space, drift_share, drift_space)
    hot_cells = _hotspot_cells(surface, clock, grid, cell_b, diff_cell)
    params = _params(cfg, surface, clock, sim, share, bg_share)
    ev = sim.events
    offspring_share = float((lineage["generation"] > 0).mean())
    contagion = {
        "branching_ratio": cfg.branching_ratio if cfg.realistic else 0.0,
        "by_category": {c: float(t) for c, t in zip(CATEGORY_NAMES, sim.theta, strict=True)},
        "time_kernel": "exponential",
        "time_scale_days": cfg.contagion_days,
        "space_kernel": "gaussian",
        "distance_scale_m": cfg.contagion_m,
        "same_category": True,
        "offspring_share_recorded": offspring_share,
        "offspring_share_true": float((ev.generation > 0).mean()),
    }
    return GroundTruth(params, grid, _hotspot_frame(surface), hot_cells, contagion,
                       _covariates(cfg, surface, grid, cell_b), lineage, None, factors)


def _with_descendants(hourly: FloatArray, theta: FloatArray, omega: float) -> FloatArray:
    """Hourly background plus the expected descendants it triggers within the period.

    For an exponential kernel ``ω e^{-ω u}`` and branching ratio θ, the descendants of one
    crime (all generations) arrive at rate ``θ ω e^{-(1-θ) ω u}`` after it; convolving the
    background with this renewal density gives the expected intensity exactly (up to the hourly
    discretisation), including the loss of descendants after the end of the period.
    """
    out = hourly.copy()
    n = hourly.shape[1]
    for c, th in enumerate(theta.tolist()):
        if th <= 0:
            continue
        rate = (1.0 - th) * omega
        lags = np.arange(min(n, int(np.ceil(30.0 / rate))) + 1)
        g = th / (1.0 - th) * -np.diff(np.exp(-rate * lags))
        out[c] += fftconvolve(hourly[c], g)[:n]
    return np.maximum(out, 0.0)


def _to_cells(p: FloatArray, cells: np.ndarray, n_cells: int) -> FloatArray:
    """Sum the columns of ``p`` (weeks, points) into cells: ``(weeks, n_cells)``."""
    uc, inv = np.unique(cells, return_inverse=True)
    agg = np.zeros((len(uc), p.shape[0]))
    np.add.at(agg, inv.ravel(), p.T)
    out = np.zeros((p.shape[0], n_cells))
    out[:, uc] = agg.T
    return out


def _uniform_space(cfg: CityConfig, surface: Surface, grid: SquareGrid) -> FloatArray:
    """Homogeneous city: each cell's share of the area, times its mean recording probability."""
    layout = surface.layout
    k = 4
    sub = (np.arange(k) + 0.5) / k * grid.cell_size
    cx = grid.x0 + (np.arange(grid.n_cells) % grid.nx) * grid.cell_size
    cy = grid.y0 + (np.arange(grid.n_cells) // grid.nx) * grid.cell_size
    px = (cx[:, None, None] + sub[None, None, :]).repeat(k, axis=1).reshape(grid.n_cells, -1)
    py = (cy[:, None, None] + sub[None, :, None]).repeat(k, axis=2).reshape(grid.n_cells, -1)
    inside = layout.inside(px, py)
    out = np.zeros((len(CATEGORY_NAMES), grid.n_cells))
    area = grid.cell_area / layout.size**2
    for c in range(len(CATEGORY_NAMES)):
        r = record_probability(cfg.recording_bias, layout, px.ravel(), py.ravel(),
                               np.full(px.size, c)).reshape(px.shape)
        out[c] = area * (r * inside).mean(axis=1)
    return out


def _hotspot_cells(
    surface: Surface, clock: Clock, grid: SquareGrid, cell_b: np.ndarray, diff_cell: FloatArray
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    weeks = clock.week_starts.tz_convert("UTC")
    for h_i, h in enumerate(surface.hotspots):
        cats = [CATEGORY_NAMES.index(c) for c in h.categories if surface.shares[CATEGORY_NAMES.index(c), h_i] > 0]
        if h.kind == "drifting":
            got = drift_blocks(surface, clock)
            if got is None:
                continue
            cand, pw = got
            mass = _to_cells(pw, cell_b[cand], grid.n_cells)  # (weeks, cells)
        else:
            idx, p = surface.gaussian_blocks(h.x, h.y, h.sigma)
            mass = np.asarray(np.bincount(cell_b[idx], p, grid.n_cells), float)[None, :]
        for c in cats:
            hot = surface.shares[c, h_i] * mass
            diff = np.maximum(diff_cell[c][None, :], 1e-300)
            ok = (hot >= diff) & (mass >= 0.02)
            for cell in np.flatnonzero(ok.any(axis=0)).tolist():
                wk = np.flatnonzero(ok[:, cell])
                if h.kind == "drifting":
                    start = max(weeks[wk[0]], clock.start_utc)
                    end = min(weeks[wk[-1]] + pd.Timedelta(days=7), clock.end_utc)
                else:
                    start, end = clock.start_utc, clock.end_utc
                lift = float(((hot[wk, cell] + diff[0, cell]) / diff[0, cell]).max())
                rows.append({"cell_id": cell, "category": CATEGORY_NAMES[c], "kind": h.kind, "hotspot_id": h_i,
                             "start": start, "end": end, "lift": lift})
    out = pd.DataFrame(rows, columns=list(_HOTSPOT_CELL_COLUMNS))
    out = out.astype({"cell_id": "int64", "hotspot_id": "int64", "lift": "float64"})
    for col in ("start", "end"):
        out[col] = pd.to_datetime(out[col], utc=True)
    return out


def _hotspot_frame(surface: Surface) -> pd.DataFrame:
    crs = surface.layout.crs
    rows = []
    for h in surface.hotspots:
        lon, lat = to_wgs84(np.array([h.x, h.x_end]), np.array([h.y, h.y_end]), crs)
        rows.append({"hotspot_id": h.hotspot_id, "kind": h.kind, "categories": ",".join(h.categories),
                     "sigma_m": h.sigma, "weight": h.weight, "x": h.x, "y": h.y, "x_end": h.x_end,
                     "y_end": h.y_end, "lon": float(lon[0]), "lat": float(lat[0]), "lon_end": float(lon[1]),
                     "lat_end": float(lat[1])})
    cols = ["hotspot_id", "kind", "categories", "sigma_m", "weight", "x", "y", "x_end", "y_end", "lon", "lat",
            "lon_end", "lat_end"]
    return pd.DataFrame(rows, columns=cols)


def _covariates(cfg: CityConfig, surface: Surface, grid: SquareGrid, cell_b: np.ndarray) -> pd.DataFrame:
    layout = surface.layout
    n = grid.n_cells
    count = np.bincount(cell_b, minlength=n).astype(float)
    safe = np.maximum(count, 1.0)
    residents = RESIDENTS_PER_KM2 * (layout.size / 1_000.0) ** 2
    affected = CATEGORY_NAMES.index(cfg.recording_bias.categories[0]) if (
        cfg.recording_bias is not None and cfg.recording_bias.categories) else 0
    r = record_probability(cfg.recording_bias, layout, layout.bx, layout.by, np.full(layout.n_blocks, affected))
    cx, cy = grid.centres()
    return pd.DataFrame({
        "cell_id": np.arange(n, dtype=np.int64),
        "x": cx,
        "y": cy,
        "residents": np.bincount(cell_b, surface.population, n) / surface.population.sum() * residents,
        "commercial": np.bincount(cell_b, surface.commercial, n) / safe,
        "deprivation": np.bincount(cell_b, surface.deprivation, n) / safe,
        "n_blocks": count.astype(np.int64),
        "recording_prob": np.where(count > 0, np.bincount(cell_b, r, n) / safe, 1.0),
    })


def _params(
    cfg: CityConfig, surface: Surface, clock: Clock, sim: Simulation, share: FloatArray, bg_share: FloatArray
) -> dict[str, Any]:
    from crimelens.synth.codes import PROFILES

    layout = surface.layout
    ev = sim.events
    lon, lat = to_wgs84(np.array([layout.centre[0]]), np.array([layout.centre[1]]), layout.crs)
    cats: dict[str, Any] = {}
    for i, name in enumerate(CATEGORY_NAMES):
        p = PROFILES[name]
        cats[name] = {
            "share": float(share[i]), "background_share": float(bg_share[i]),
            "branching_ratio": float(sim.theta[i]), "hotspot_share": float(surface.shares[i].sum()),
            "n_background": int(sim.n_background[i]),
            "hour_peak": p.hour_peak, "hour_kappa": p.hour_kappa, "hour_floor": p.hour_floor,
            "weekday": list(p.weekday), "weekend_night": p.weekend_night,
            "annual_amp": p.annual_amp, "annual_peak_doy": p.annual_peak,
            "commercial": p.commercial, "deprivation": p.deprivation,
        } if cfg.realistic else {"share": float(share[i]), "n_background": int(sim.n_background[i])}
    return {
        "config": cfg.to_dict(),
        "kind": cfg.kind,
        "crs": layout.crs,
        "origin": [layout.x0, layout.y0],
        "size_m": layout.size,
        "block_m": layout.block,
        "n_blocks": layout.n_blocks,
        "centre_lonlat": [float(lon[0]), float(lat[0])],
        "timezone": cfg.timezone,
        "start_utc": clock.start_utc.isoformat(),
        "end_utc": clock.end_utc.isoformat(),
        "location": "block points" if cfg.realistic else "exact uniform points",
        "categories": cats,
        "truth_categories": list(cfg.truth_categories if cfg.truth_categories is not None else DRIFT_CATEGORIES),
        "n_incidents": cfg.n_incidents,
        "n_true_crimes": len(ev),
        "n_true_background": int(sim.n_background.sum()),
        "n_true_offspring": int((ev.generation > 0).sum()),
        "n_recorded_before_thinning": int(ev.recorded.sum()),
        "keep_fraction": sim.keep_fraction,
        "hotspot_shares": {str(h.hotspot_id): {c: float(surface.shares[CATEGORY_NAMES.index(c), h.hotspot_id])
                                               for c in h.categories} for h in surface.hotspots},
        "areas": {k: len(names) for k, (names, _) in surface.areas.items()},
    }
