"""Generate a synthetic city: :func:`generate_city` and the :class:`SyntheticCity` it returns.

The steps, each in its own module: the street grid (:mod:`~crimelens.synth.layout`), the
covariate surfaces, hot spots and areas (:mod:`~crimelens.synth.surface`), the background and
self-exciting process (:mod:`~crimelens.synth.process`), the marks and the canonical table
(:mod:`~crimelens.synth.frame`), the ground truth (:mod:`~crimelens.synth.truth`) and portal
files (:mod:`~crimelens.synth.portal`).

Randomness comes from independent streams spawned from the seed: the geography (streets'
surfaces, hot spots, areas) uses its own stream, so cities that differ only in ``n_incidents``,
``days`` or the process options share the same map.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crimelens.synth.config import CityConfig, DirtConfig
from crimelens.synth.frame import PortalColumns, build_incidents
from crimelens.synth.layout import build_layout
from crimelens.synth.portal import portal_frame
from crimelens.synth.process import build_clock, category_rates, simulate
from crimelens.synth.surface import build_surface
from crimelens.synth.truth import GroundTruth, build_truth


@dataclass(slots=True)
class SyntheticCity:
    """A generated city: canonical incidents and the ground truth behind them.

    Attributes
    ----------
    config : CityConfig
        The configuration that produced it.
    incidents : DataFrame
        The canonical incident table (passes :func:`crimelens.schema.validate`), in time order.
    truth : GroundTruth
        Parameters, hot spots, expected intensity per cell and week, contagion.
    """

    config: CityConfig
    incidents: pd.DataFrame
    truth: GroundTruth
    portal_columns: PortalColumns = field(repr=False)

    def to_portal(self, fmt: str = "chicago", dirt: DirtConfig | None = None) -> pd.DataFrame:
        """The incidents in a portal's file format (``"chicago"`` or ``"canonical"``).

        With ``dirt``, flaws are injected and their exact counts stored in ``truth.dirt``.
        """
        frame, report = portal_frame(self, fmt, dirt)
        if dirt is not None:
            self.truth.dirt = report.to_dict()
        return frame


def generate_city(config: CityConfig | None = None, **overrides: object) -> SyntheticCity:
    """Generate a seeded synthetic city.

    Parameters
    ----------
    config : CityConfig, optional
        The city's configuration; defaults to ``CityConfig()``.
    **overrides
        Fields replacing those of ``config`` (``generate_city(n_incidents=1000, seed=3)``).

    Returns
    -------
    SyntheticCity
        Identical for identical configurations.

    Examples
    --------
    >>> city = generate_city(CityConfig(n_incidents=2_000, days=60, seed=7, size_m=8_000))
    >>> len(city.incidents)
    2000
    """
    cfg = config or CityConfig()
    if overrides:
        from dataclasses import replace

        cfg = replace(cfg, **overrides)  # type: ignore[arg-type]  # validated in __post_init__
    geo_seq, event_seq, mark_seq = np.random.SeedSequence(cfg.seed).spawn(3)
    layout = build_layout(cfg.center, cfg.size_m, cfg.block_m)
    surface = build_surface(cfg, layout, np.random.default_rng(geo_seq))
    clock = build_clock(cfg)
    sim = simulate(cfg, surface, clock, np.random.default_rng(event_seq))
    incidents, portal, lineage = build_incidents(cfg, surface, clock, sim, np.random.default_rng(mark_seq))
    share, _, bg_share = category_rates(cfg)
    truth = build_truth(cfg, surface, clock, sim, lineage, share, bg_share)
    return SyntheticCity(cfg, incidents, truth, portal)
