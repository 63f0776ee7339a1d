"""Where crime happens: covariate surfaces, the diffuse background, hot spots and area ids.

Three smooth random fields are drawn on a raster (white noise smoothed with a Gaussian filter,
the usual way to simulate a stationary Gaussian random field) and read at every block point:

* ``population`` -- log-normal field × a downtown peak, with a few parks (near-empty discs);
* ``commercial`` -- downtown, arterial streets every eight blocks and a random field;
* ``deprivation`` -- a random field with a longer correlation length.

The *diffuse* background of category ``c`` puts mass on block ``b`` in proportion to
``population_b · exp(a_c · commercial_b + d_c · deprivation_b)`` (loadings from
:data:`crimelens.synth.codes.PROFILES`), a log-linear risk-terrain form.

Hot spots are isotropic Gaussian bumps over block points: *persistent* ones at neighbourhood
scale (sd 150-350 m), *street* ones at the scale of one or two street segments (sd 40-70 m), and
one *drifting* bump whose centre moves in a straight line over the period. Each carries one or
two categories and takes a fixed share of their background (:func:`hotspot_shares`).

Areas (district ⊃ beat, ward, community area) are nearest-seed partitions of the block points,
with seeds drawn in proportion to population so busy areas are smaller, as police beats are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.spatial import cKDTree

from crimelens.geo.crs import FloatArray
from crimelens.synth.codes import CATEGORY_NAMES, DRIFT_CATEGORIES, PROFILES
from crimelens.synth.config import CityConfig, RecordingBias
from crimelens.synth.layout import IntArray, Layout

#: Synthetic residents per square kilometre (scales the ``population`` covariate).
RESIDENTS_PER_KM2 = 4_500.0


@dataclass(frozen=True, slots=True)
class Hotspot:
    """One hot spot: a Gaussian bump of sd ``sigma`` at (``x``, ``y``), moving to the end point."""

    hotspot_id: int
    kind: str
    x: float
    y: float
    sigma: float
    categories: tuple[str, ...]
    weight: float
    x_end: float
    y_end: float

    def centre_at(self, fraction: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Centre after ``fraction`` (0..1) of the period."""
        f = np.clip(np.asarray(fraction, float), 0.0, 1.0)
        return self.x + f * (self.x_end - self.x), self.y + f * (self.y_end - self.y)


@dataclass(frozen=True, slots=True)
class Surface:
    """Block-level surfaces of one city (arrays are indexed by block)."""

    layout: Layout
    population: FloatArray
    commercial: FloatArray
    deprivation: FloatArray
    diffuse: FloatArray  # (categories, blocks), rows sum to 1
    hotspots: tuple[Hotspot, ...]
    shares: FloatArray  # (categories, hotspots): share of each category's background per hot spot
    areas: dict[str, tuple[list[str], IntArray]]  # area -> (labels, label index per block)
    tree: cKDTree

    def gaussian_blocks(self, x: float, y: float, sigma: float) -> tuple[IntArray, FloatArray]:
        """Block points within 4 sd of (x, y) and their normalised Gaussian weights."""
        idx = np.asarray(self.tree.query_ball_point([x, y], 4.0 * sigma), dtype=np.int64)
        if idx.size == 0:
            idx = np.array([int(self.tree.query([x, y])[1])], dtype=np.int64)
        d2 = (self.layout.bx[idx] - x) ** 2 + (self.layout.by[idx] - y) ** 2
        w = np.exp(-d2 / (2 * sigma**2))
        return idx, w / w.sum()

    def hotspot_total(self) -> FloatArray:
        """Share of each category's background that falls in hot spots."""
        return np.asarray(self.shares.sum(axis=1), float)


def record_probability(
    bias: RecordingBias | None, layout: Layout, x: FloatArray, y: FloatArray, cat: IntArray
) -> FloatArray:
    """Probability that a true crime of category index ``cat`` at (``x``, ``y``) is recorded."""
    if bias is None:
        return np.ones(len(x))
    cx, cy = layout.centre
    inside = (x - cx - bias.dx_m) ** 2 + (y - cy - bias.dy_m) ** 2 <= bias.radius_m**2
    p = np.where(inside, bias.inside, bias.outside)
    if bias.categories:
        affected = np.isin(np.asarray(CATEGORY_NAMES)[cat], bias.categories)
        p = np.where(affected, p, 1.0)
    return np.asarray(p, float)


def build_surface(cfg: CityConfig, layout: Layout, rng: np.random.Generator) -> Surface:
    """Draw the covariate fields, hot spots and areas of a city."""
    bx, by, size = layout.bx, layout.by, layout.size
    cx, cy = layout.centre
    dcx = cx + rng.uniform(-0.1, 0.1) * size
    dcy = cy + rng.uniform(-0.1, 0.1) * size
    r = np.hypot(bx - dcx, by - dcy)
    z_pop = _field(rng, layout, 1_500.0)
    z_com = _field(rng, layout, 800.0)
    z_dep = _field(rng, layout, 3_000.0)
    pop = np.exp(0.8 * z_pop) * (0.35 + 1.6 * np.exp(-r / (size / 6)))
    for _ in range(4):  # parks: near-empty discs
        px, py = rng.uniform(0.1, 0.9, 2) * size
        pr = rng.uniform(300.0, 900.0)
        pop[np.hypot(bx - layout.x0 - px, by - layout.y0 - py) < pr] *= 0.05
    pop = pop / pop.mean()
    n = layout.n
    rel = np.arange(layout.n_blocks) % (n * (n - 1))
    on_arterial = (rel // (n - 1)) % 8 == 0
    commercial = _standardise(2.5 * np.exp(-r / (size / 12)) + 0.5 * z_com + 0.8 * on_arterial)
    deprivation = _standardise(z_dep + 0.4 * _standardise(r))
    diffuse = np.empty((len(CATEGORY_NAMES), layout.n_blocks))
    for i, name in enumerate(CATEGORY_NAMES):
        prof = PROFILES[name]
        w = pop * np.exp(prof.commercial * commercial + prof.deprivation * deprivation)
        diffuse[i] = w / w.sum()
    tree = cKDTree(np.column_stack([bx, by]))
    hotspots = _hotspots(cfg, layout, rng, pop, commercial) if cfg.realistic else ()
    return Surface(layout, pop, commercial, deprivation, diffuse, hotspots,
                   hotspot_shares(hotspots, cfg.hotspot_share), _areas(layout, rng, pop), tree)


def hotspot_shares(hotspots: tuple[Hotspot, ...], hotspot_share: float) -> FloatArray:
    """Share of each category's background taken by each hot spot, ``(categories, hotspots)``.

    A category's total hot spot share is ``hotspot_share`` times its mean affinity for the kinds
    of hot spot it is in (capped at 0.8), split over its hot spots by weight × affinity.
    """
    out = np.zeros((len(CATEGORY_NAMES), len(hotspots)))
    for i, name in enumerate(CATEGORY_NAMES):
        prof = PROFILES[name]
        aff = np.array([(prof.street if h.kind == "street" else prof.hotspot) if name in h.categories else 0.0
                        for h in hotspots])
        if not aff.any():
            continue
        total = min(0.8, hotspot_share * float(aff[aff > 0].mean()))
        w = aff * np.array([h.weight for h in hotspots])
        out[i] = total * w / w.sum()
    return out


def _hotspots(
    cfg: CityConfig, layout: Layout, rng: np.random.Generator, pop: FloatArray, commercial: FloatArray
) -> tuple[Hotspot, ...]:
    size = layout.size
    chosen: list[tuple[float, float]] = []
    out: list[Hotspot] = []
    hot_names = [c for c in CATEGORY_NAMES if PROFILES[c].hotspot > 0]
    hot_w = np.array([PROFILES[c].hotspot for c in hot_names])
    street_names = [c for c in CATEGORY_NAMES if PROFILES[c].street > 0]
    street_w = np.array([PROFILES[c].street for c in street_names])
    specs = [("persistent", min(1_500.0, size / 8), min(1_000.0, size / 10))] * cfg.n_hotspots
    specs += [("street", min(500.0, size / 20), min(500.0, size / 20))] * cfg.n_street_hotspots
    for kind, spacing, margin in specs:
        weights = pop * np.exp(0.5 * commercial) if kind == "street" else pop
        x, y = _pick_point(rng, layout, weights, chosen, spacing, margin)
        chosen.append((x, y))
        if kind == "street":
            sigma = rng.uniform(40.0, 70.0)
            cats = _pick(rng, street_names, street_w, int(rng.integers(1, 3)))
        else:
            sigma = rng.uniform(150.0, 350.0)
            cats = _pick(rng, hot_names, hot_w, 2)
        out.append(Hotspot(len(out), kind, x, y, sigma, cats, float(rng.uniform(0.6, 1.4)), x, y))
    if cfg.drifting_hotspot:
        margin = min(1_500.0, size / 8)
        length = min(cfg.drift_km * 1_000.0, 0.9 * (size - 2 * margin))
        lo, hi = layout.x0 + margin, layout.x0 + size - margin
        lo_y, hi_y = layout.y0 + margin, layout.y0 + size - margin
        for _ in range(200):
            x, y = rng.uniform(lo, hi), rng.uniform(lo_y, hi_y)
            a = rng.uniform(0, 2 * np.pi)
            xe, ye = x + length * np.cos(a), y + length * np.sin(a)
            if lo <= xe <= hi and lo_y <= ye <= hi_y:
                break
        else:  # pragma: no cover - 200 failures are practically impossible with the clipped length
            xe, ye = x, y
        out.append(Hotspot(len(out), "drifting", float(x), float(y), 300.0, DRIFT_CATEGORIES, 1.0,
                           float(xe), float(ye)))
    return tuple(out)


def _pick_point(
    rng: np.random.Generator, layout: Layout, weights: FloatArray, chosen: list[tuple[float, float]],
    spacing: float, margin: float,
) -> tuple[float, float]:
    """A block point drawn by ``weights``, away from the edge and from points already chosen."""
    bx, by = layout.bx, layout.by
    ok = ((bx > layout.x0 + margin) & (bx < layout.x0 + layout.size - margin)
          & (by > layout.y0 + margin) & (by < layout.y0 + layout.size - margin))
    p = np.where(ok, weights, 0.0)
    cand = rng.choice(layout.n_blocks, size=64, p=p / p.sum())
    for i in cand.tolist():
        if all((bx[i] - x) ** 2 + (by[i] - y) ** 2 >= spacing**2 for x, y in chosen):
            return float(bx[i]), float(by[i])
    return float(bx[cand[0]]), float(by[cand[0]])


def _pick(rng: np.random.Generator, names: list[str], w: FloatArray, k: int) -> tuple[str, ...]:
    idx = rng.choice(len(names), size=min(k, len(names)), replace=False, p=w / w.sum())
    return tuple(names[i] for i in sorted(idx.tolist()))


def _field(rng: np.random.Generator, layout: Layout, corr_m: float) -> FloatArray:
    """A standardised smooth Gaussian random field read at the block points."""
    n = layout.n + 1
    noise = rng.standard_normal((n, n))
    smooth = gaussian_filter(noise, sigma=corr_m / layout.block, mode="wrap")
    col = (layout.bx - layout.x0) / layout.block
    row = (layout.by - layout.y0) / layout.block
    return _standardise(map_coordinates(smooth, [row, col], order=1, mode="nearest"))


def _standardise(a: FloatArray) -> FloatArray:
    a = np.asarray(a, float)
    sd = a.std()
    return np.asarray((a - a.mean()) / (sd if sd > 0 else 1.0), float)


def _areas(layout: Layout, rng: np.random.Generator, pop: FloatArray) -> dict[str, tuple[list[str], IntArray]]:
    """District, beat, ward and community area of every block point: (labels, label index per block)."""
    ratio = (layout.size / 1_000.0) ** 2 / 900.0
    n_dist = int(np.clip(round(22 * ratio), 3, 22))
    n_ward = int(np.clip(round(50 * ratio), 5, 50))
    n_ca = int(np.clip(round(77 * ratio), 5, 77))
    pts = np.column_stack([layout.bx, layout.by])
    cx, cy = layout.centre

    def partition(k: int, members: IntArray, weight: FloatArray) -> tuple[IntArray, IntArray]:
        p = weight[members] / weight[members].sum()
        seeds = members[rng.choice(len(members), size=min(k, len(members)), replace=False, p=p)]
        return np.asarray(cKDTree(pts[seeds]).query(pts[members])[1], np.int64), seeds

    everyone = np.arange(layout.n_blocks, dtype=np.int64)
    w = np.sqrt(pop)
    dist_of, dseeds = partition(n_dist, everyone, w)
    # district 1 is downtown, numbers grow outwards (as Chicago's roughly do)
    order = np.argsort(np.argsort(np.hypot(layout.bx[dseeds] - cx, layout.by[dseeds] - cy)))
    district = order[dist_of]
    beat_names: list[str] = []
    beat = np.empty(layout.n_blocks, dtype=np.int64)
    for d in range(n_dist):
        members = everyone[district == d]
        beat_of, seeds = partition(12, members, w)
        beat[members] = len(beat_names) + beat_of
        beat_names += [f"{d + 1:02d}{j // 4 + 1}{j % 4 + 1}" for j in range(len(seeds))]
    ward_of, wseeds = partition(n_ward, everyone, w)
    ca_of, cseeds = partition(n_ca, everyone, w)

    def north_to_south(seeds: IntArray) -> list[str]:
        key = np.lexsort((layout.bx[seeds], -np.round(layout.by[seeds], -3)))
        return [str(v) for v in (np.argsort(key) + 1).tolist()]

    return {
        "district": ([f"{d + 1:03d}" for d in range(n_dist)], district),
        "beat": (beat_names, beat),
        "ward": (north_to_south(wseeds), ward_of),
        "community_area": (north_to_south(cseeds), ca_of),
    }
