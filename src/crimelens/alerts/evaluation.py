"""How often a detector cries wolf, and how fast it finds real spikes.

* :func:`false_alerts` runs repeated scans (weekly, or daily as on-arrival evaluation would) over
  a panel and counts alert *episodes* -- an alert on a series within ``cooldown_days`` of its
  previous one is the same episode, as de-duplication would treat it -- per 100 area-weeks
  (areas × weeks scanned, all categories of an area together) and per 100 series-weeks.
* :func:`plant_spikes` adds Poisson incidents to chosen series so that their rate is
  ``multiplier`` times the true base rate for ``days`` days.
* :func:`detection` scans daily through each planted spike and reports recall (found while the
  spike lasts, and within ``follow_days`` after it) and the detection delay: days of the spike
  seen before the first alert on that series.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.alerts.detect import SpikeDetector
from crimelens.alerts.expected import PanelStats
from crimelens.alerts.panel import CountPanel
from crimelens.exceptions import InputError


@dataclass(frozen=True, slots=True)
class PlantedSpike:
    """A rise of ``multiplier`` × the base rate in one series for ``days`` days from ``start``."""

    area: str
    category: str
    start: pd.Timestamp
    multiplier: float = 2.0
    days: int = 7


@dataclass(frozen=True, slots=True)
class FalseAlertReport:
    """Alert episodes on series with no planted change, per 100 area-weeks and series-weeks."""

    episodes: int
    alerts: int
    scans: int
    step_days: int
    area_weeks: float
    series_weeks: float

    @property
    def per_100_area_weeks(self) -> float:
        """False alert episodes per 100 area-weeks."""
        return 100.0 * self.episodes / self.area_weeks if self.area_weeks else 0.0

    @property
    def per_100_series_weeks(self) -> float:
        """False alert episodes per 100 area × category weeks."""
        return 100.0 * self.episodes / self.series_weeks if self.series_weeks else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"episodes": self.episodes, "alerts": self.alerts, "scans": self.scans, "step_days": self.step_days,
                "area_weeks": self.area_weeks, "series_weeks": self.series_weeks,
                "per_100_area_weeks": self.per_100_area_weeks, "per_100_series_weeks": self.per_100_series_weeks}


@dataclass(frozen=True, slots=True)
class DetectionReport:
    """Recall and delay of planted spikes."""

    spikes: list[PlantedSpike]
    delays: list[float]  # days of spike seen before the first alert; nan when never found
    during_days: int
    follow_days: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def recall(self) -> float:
        """Share of spikes found while they lasted."""
        d = np.asarray(self.delays, float)
        return float(np.mean(~np.isnan(d) & (d <= self.during_days))) if d.size else 0.0

    @property
    def recall_eventually(self) -> float:
        """Share of spikes found by ``follow_days`` after they ended."""
        d = np.asarray(self.delays, float)
        return float(np.mean(~np.isnan(d))) if d.size else 0.0

    @property
    def median_delay(self) -> float:
        """Median detection delay (days) of the spikes found."""
        d = np.asarray(self.delays, float)
        d = d[~np.isnan(d)]
        return float(np.median(d)) if d.size else float("nan")

    @property
    def mean_delay(self) -> float:
        """Mean detection delay (days) of the spikes found."""
        d = np.asarray(self.delays, float)
        d = d[~np.isnan(d)]
        return float(np.mean(d)) if d.size else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"spikes": len(self.spikes), "recall": self.recall, "recall_eventually": self.recall_eventually,
                "median_delay_days": self.median_delay, "mean_delay_days": self.mean_delay, **self.extra}


def plant_spikes(panel: CountPanel, spikes: list[PlantedSpike], daily_rate: npt.NDArray[np.float64],
                 rng: np.random.Generator) -> CountPanel:
    """A copy of ``panel`` with extra Poisson counts ``(multiplier − 1) × rate`` on each spike's days.

    ``daily_rate`` is the true base rate of every series and day (same shape as the counts).
    """
    if daily_rate.shape != panel.counts.shape:
        raise InputError("daily_rate must have the panel's (series, day) shape")
    out = panel.copy()
    for s in spikes:
        row = out.series_index(s.area, s.category)
        if row is None:
            raise InputError(f"no series {s.area!r} / {s.category!r} in the panel")
        lo = out.day_index(s.start)
        hi = min(lo + s.days, out.n_days)
        extra = rng.poisson(np.maximum(s.multiplier - 1, 0) * daily_rate[row, lo:hi])
        out.counts[row, lo:hi] += extra
    return out


def _scan_hits(detector: SpikeDetector, panel: CountPanel, ends: list[int],
               stats: PanelStats) -> dict[int, set[int]]:
    hits: dict[int, set[int]] = {}
    for e in ends:
        res = detector.scan(panel, end=panel.day_at(e), stats=stats)
        flag = res.tests["alert"].to_numpy(bool)
        hits[e] = {int(s) for s in res.tests["series"].to_numpy()[flag]}
    return hits


def false_alerts(detector: SpikeDetector, panel: CountPanel, *, first_end: int, last_end: int,
                 step_days: int = 7, cooldown_days: int = 7,
                 exclude: dict[int, tuple[int, int]] | None = None) -> FalseAlertReport:
    """Count alert episodes over scans ending at ``first_end, first_end + step, ... ≤ last_end`` (day indices).

    ``exclude`` maps a series row to a day range ``[lo, hi)`` whose alerts are true (planted)
    and not counted.
    """
    if first_end > last_end:
        raise InputError("first_end must not be after last_end")
    ends = list(range(first_end, last_end + 1, step_days))
    hits = _scan_hits(detector, panel, ends, PanelStats(panel))
    last_alert: dict[int, int] = {}
    episodes = alerts = 0
    for e in ends:
        for s in sorted(hits[e]):
            if exclude and s in exclude and exclude[s][0] < e <= exclude[s][1]:
                continue
            alerts += 1
            if s not in last_alert or e - last_alert[s] > cooldown_days:
                episodes += 1
            last_alert[s] = e
    weeks = (ends[-1] - ends[0] + step_days) / 7.0
    n_areas = panel.keys["area"].nunique()
    return FalseAlertReport(episodes=episodes, alerts=alerts, scans=len(ends), step_days=step_days,
                            area_weeks=n_areas * weeks, series_weeks=panel.n_series * weeks)


def detection(detector: SpikeDetector, panel: CountPanel, spikes: list[PlantedSpike], *,
              follow_days: int = 7) -> DetectionReport:
    """Daily scans through each spike: recall and delay (days of spike seen before the first alert)."""
    stats = PanelStats(panel)
    wanted: dict[int, list[tuple[int, int, int]]] = {}
    for k, s in enumerate(spikes):
        row = panel.series_index(s.area, s.category)
        if row is None:
            raise InputError(f"no series {s.area!r} / {s.category!r} in the panel")
        lo = panel.day_index(s.start)
        for e in range(lo + 1, min(lo + s.days + follow_days, panel.n_days) + 1):
            wanted.setdefault(e, []).append((k, row, lo))
    hits = _scan_hits(detector, panel, sorted(wanted), stats)
    delays = [float("nan")] * len(spikes)
    for e in sorted(wanted):
        for k, row, lo in wanted[e]:
            if np.isnan(delays[k]) and row in hits[e]:
                delays[k] = float(e - lo)
    days = max((s.days for s in spikes), default=7)
    return DetectionReport(spikes=spikes, delays=delays, during_days=days, follow_days=follow_days)
