"""A synthetic city whose crime lives on its streets, with the true rate of every segment.

Built on the street lattice of :mod:`crimelens.synth.layout`: each block (the street between two
cross streets) is a segment. Segment rates are drawn from a Gamma distribution and a few whole
streets are made hot along their length (linear hot spots, which square cells cut across).
Incidents fall uniformly along their segment, displaced sideways by a few metres (the recorded
location is beside the street, not on its centre line). Used to test street-segment forecasts
against a known truth (``crimelens.forecast.segments``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import shapely

from crimelens.geo.crs import FloatArray
from crimelens.synth.layout import Layout, build_layout


@dataclass(frozen=True, slots=True, eq=False)
class NetworkCity:
    """Street segments (shapely lines, metres in ``crs``), incidents and the true daily rates."""

    layout: Layout
    lines: np.ndarray
    rate: FloatArray
    incidents: pd.DataFrame
    crs: str


def network_city(*, seed: int = 0, size_m: float = 3000.0, block_m: float = 100.0, days: int = 730,
                 daily: float = 40.0, jitter_m: float = 4.0, hot_streets: int = 4, hot_factor: float = 6.0,
                 start: str = "2022-01-03", center: tuple[float, float] = (-79.4, 43.7)) -> NetworkCity:
    """Draw a network city (defaults: 3 km square, 100 m blocks, two years, ~40 incidents a day)."""
    rng = np.random.default_rng(seed)
    lay = build_layout(center, size_m, block_m)
    n_ns = lay.n * (lay.n - 1)
    half = block_m / 2
    is_ns = np.arange(lay.n_blocks) < n_ns
    x0 = np.where(is_ns, lay.bx, lay.bx - half)
    x1 = np.where(is_ns, lay.bx, lay.bx + half)
    y0 = np.where(is_ns, lay.by - half, lay.by)
    y1 = np.where(is_ns, lay.by + half, lay.by)
    lines = shapely.linestrings(np.stack([np.column_stack([x0, y0]), np.column_stack([x1, y1])], axis=1))
    rate = rng.gamma(0.5, 1.0, lay.n_blocks)
    street = np.where(is_ns, np.arange(lay.n_blocks) // (lay.n - 1),
                      lay.n + (np.arange(lay.n_blocks) - n_ns) // (lay.n - 1))
    for s in rng.choice(2 * lay.n, hot_streets, replace=False):
        rate[street == s] *= hot_factor
    rate *= daily / rate.sum()
    per_day = rng.poisson(daily, days)
    day = np.repeat(np.arange(days), per_day)
    seg = rng.choice(lay.n_blocks, size=len(day), p=rate / rate.sum())
    t = rng.random(len(day))
    side = rng.normal(0.0, jitter_m, len(day))
    x = x0[seg] + t * (x1[seg] - x0[seg]) + np.where(is_ns[seg], side, 0.0)
    y = y0[seg] + t * (y1[seg] - y0[seg]) + np.where(is_ns[seg], 0.0, side)
    when = (pd.Timestamp(start, tz="UTC") + pd.to_timedelta(day, unit="D")
            + pd.to_timedelta(rng.integers(0, 86_400, len(day)), unit="s"))
    frame = pd.DataFrame({"occurred_at": when, "x": x, "y": y, "category": "theft", "crs": lay.crs,
                          "true_segment": seg})
    return NetworkCity(lay, np.asarray(lines, dtype=object), rate, frame.sort_values("occurred_at").reset_index(
        drop=True), lay.crs)
