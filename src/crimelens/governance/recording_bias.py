"""Do hot spots track the recording bias? (SECURITY.md BIA-04)

Recorded crime is true crime times the probability that it is recorded, and that probability is
not the same everywhere (reporting rates differ between communities; patrols find more where they
look). A forecast trained on records then ranks over-recorded places higher even when the true
rates are equal (Lum & Isaac 2016). This audit compares a selection with the one the *true*
intensity would give: the share of selected cells inside the over-recorded zone against the share
the truth selects there. On a synthetic city (:mod:`crimelens.synth` with a
:class:`~crimelens.synth.RecordingBias`) both are known, so the gap is measured, not guessed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import binomtest

from crimelens.exceptions import InputError
from crimelens.forecast.evaluation.metrics import n_flagged
from crimelens.governance.fairness import selection_weights
from crimelens.jsonsafe import json_safe
from crimelens.synth.truth import GroundTruth

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(slots=True)
class RecordingBiasAudit:
    """How much of a selection falls in the over-recorded zone, against the truth.

    Attributes
    ----------
    coverage, k, area_cells : float, int, int
        Selected share, number of selected cells, study-area cells.
    zone_cells : int
        Study-area cells in the zone.
    zone_area_share : float
        Zone cells over study-area cells.
    selected_zone_share : float
        Share of the selected cells inside the zone.
    truth_zone_share : float
        Share of the cells the true intensity selects (same ``k``, ties by expectation) inside the
        zone; with equal true rates this is the zone's area share.
    excess : float
        ``selected_zone_share - truth_zone_share``.
    lift : float
        ``selected_zone_share / truth_zone_share``.
    tolerance : float
        Largest acceptable ``|excess|``.
    p_value : float
        Two-sided binomial test of the selected zone count against ``truth_zone_share`` (how
        surprising the excess is for ``k`` cells drawn at the truth's share).
    """

    coverage: float
    k: int
    area_cells: int
    zone_cells: int
    zone_area_share: float
    selected_zone_share: float
    truth_zone_share: float
    excess: float
    lift: float
    tolerance: float
    p_value: float
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when the selection does not track the zone beyond the tolerance."""
        return abs(self.excess) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        out = json_safe(asdict(self))
        out["passed"] = self.passed
        return dict(out)

    def to_json(self, indent: int | None = 2) -> str:
        """The audit as JSON."""
        return json.dumps(self.to_dict(), indent=indent)


def recording_bias_audit(
    score: FloatArray,
    true_intensity: FloatArray,
    zone: BoolArray,
    *,
    coverage: float,
    cells: IntArray | None = None,
    tolerance: float = 0.1,
    metadata: dict[str, Any] | None = None,
) -> RecordingBiasAudit:
    """Compare the zone's share of the top ``coverage`` cells by ``score`` with its share under
    ``true_intensity``.

    Parameters
    ----------
    score : ndarray
        Scores per grid cell (a risk surface's ``score``, a hot spot statistic, counts).
    true_intensity : ndarray
        True (not recorded) expected crime per grid cell.
    zone : ndarray of bool
        Grid cells of the over- (or under-) recorded zone.
    coverage : float
        Share of the study area selected.
    cells : ndarray of int, optional
        Study-area cells (default: every cell).
    tolerance : float
        Largest acceptable difference between the two zone shares (default 0.1 = 10 points).
    metadata : dict, optional
        Kept with the result.
    """
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(true_intensity, dtype=np.float64)
    z = np.asarray(zone, dtype=bool)
    if not s.shape == t.shape == z.shape:
        raise InputError(f"score {s.shape}, truth {t.shape} and zone {z.shape} must cover the same cells")
    c = np.arange(len(s), dtype=np.int64) if cells is None else np.asarray(cells, dtype=np.int64)
    if tolerance < 0:
        raise InputError("tolerance must not be negative")
    k = n_flagged(coverage, len(c))
    in_zone = z[c].astype(np.float64)
    selected = float(selection_weights(s[c], k) @ in_zone) / k
    truth = float(selection_weights(t[c], k) @ in_zone) / k
    p_value = float(binomtest(round(selected * k), k, min(max(truth, 0.0), 1.0)).pvalue)
    return RecordingBiasAudit(
        coverage=float(coverage), k=k, area_cells=len(c), zone_cells=int(in_zone.sum()),
        zone_area_share=float(in_zone.mean()), selected_zone_share=selected, truth_zone_share=truth,
        excess=selected - truth, lift=selected / truth if truth > 0 else float("inf"),
        tolerance=float(tolerance), p_value=p_value, metadata=dict(metadata or {}),
    )


@dataclass(frozen=True, slots=True, eq=False)
class TruthLayer:
    """The true intensity and the recording zone of a synthetic city, on its truth grid.

    Attributes
    ----------
    intensity : ndarray of float
        True expected crimes per grid cell (recorded expectation / recording probability).
    zone : ndarray of bool
        Cells recorded with the higher probability (the over-recorded zone).
    cells : ndarray of int
        Cells wholly inside or wholly outside the zone: the study area of the audit. Cells the
        zone's edge crosses mix two recording probabilities, so their true intensity cannot be
        recovered exactly; they are left out.
    """

    intensity: FloatArray
    zone: BoolArray
    cells: IntArray


def synthetic_truth(truth: GroundTruth, *, start: Any = None, end: Any = None) -> TruthLayer:
    """True intensity per truth-grid cell and the over-recorded zone of a synthetic city.

    The truth's ``expected`` counts are of *recorded* incidents; dividing by each cell's recording
    probability gives the true intensity. The zone holds the cells recorded with the highest
    probability (the disc of the city's ``RecordingBias``, or its complement when the disc is
    under-recorded).

    Parameters
    ----------
    truth : GroundTruth
        The city's truth.
    start, end : datetime-like, optional
        Keep the weeks starting in ``[start, end)`` (default: the whole period).
    """
    exp = truth.expected("all")
    weeks = pd.DatetimeIndex(exp["week_start"])
    weeks = weeks.tz_convert("UTC") if weeks.tz is not None else weeks.tz_localize("UTC")
    keep = np.ones(len(exp), dtype=bool)
    if start is not None:
        keep &= weeks >= _utc(start)
    if end is not None:
        keep &= weeks < _utc(end)
    n = truth.grid.n_cells
    per_cell = exp[keep].groupby("cell_id")["expected"].sum().reindex(range(n), fill_value=0.0)
    cov = truth.covariates.set_index("cell_id")
    p = cov["recording_prob"].reindex(range(n)).to_numpy(dtype=np.float64)
    blocks = cov["n_blocks"].reindex(range(n)).to_numpy(dtype=np.float64) if "n_blocks" in cov else np.ones(n)
    if not np.isfinite(p).all() or (p <= 0).any():
        raise InputError("the truth has no usable recording probability per cell")
    intensity = per_cell.to_numpy(dtype=np.float64) / p
    lo, hi = p.min(), p.max()
    pure = (np.isclose(p, lo) | np.isclose(p, hi)) & (blocks > 0)
    zone = np.isclose(p, hi) if hi > lo else np.zeros(n, dtype=bool)
    return TruthLayer(intensity, zone, np.flatnonzero(pure).astype(np.int64))


def _utc(when: Any) -> pd.Timestamp:
    ts = pd.Timestamp(when)
    return ts.tz_convert("UTC") if ts.tzinfo else ts.tz_localize("UTC")


__all__ = ["RecordingBiasAudit", "TruthLayer", "recording_bias_audit", "synthetic_truth"]
