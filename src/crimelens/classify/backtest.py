"""Rolling-origin backtest of a classifier: retrain on a schedule, score each period unseen.

A deployed crime-type model is not trained once and frozen: it is retrained as labelled
incidents accumulate (monthly, quarterly) and each version classifies the incidents of the
period until the next retraining. Scoring that practice honestly is a rolling-origin
evaluation [1]_ [2]_: the test period (the latest incidents) is cut into consecutive blocks;
for each block a fresh copy of the estimator is fitted on every labelled incident that occurred
**before the block starts**, and then classifies the block, its place-history features seeing
only the incidents strictly earlier than each classified one (the deployment protocol of
:meth:`~crimelens.classify.IncidentClassifier.predict_proba` with ``history``). No model ever
sees a label from its own block or later. The class prior and the one-hot logistic baseline are
refitted on the same training incidents of each block, so the comparison stays fair, and the
pooled probabilities of all blocks are scored with :func:`~crimelens.classify.score`.

A labelled incident is taken to be known from the moment it occurred (the same assumption as
the ``history`` protocol, which uses ``reported_at`` instead where a source gives it).

References
----------
.. [1] L. J. Tashman, "Out-of-sample tests of forecasting accuracy: an analysis and review",
   International Journal of Forecasting 16(4), 437-450, 2000.
.. [2] C. Bergmeir and J. M. Benítez, "On the use of cross-validation for time series
   predictor evaluation", Information Sciences 191, 192-213, 2012.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.base import clone

from crimelens.classify.baselines import OneHotLogistic
from crimelens.classify.classifier import IncidentClassifier
from crimelens.classify.metrics import EvaluationReport, align_proba, prior_proba, score
from crimelens.exceptions import InputError

Progress = Callable[[str], None]


@dataclass(slots=True)
class BacktestBlock:
    """One retraining: the block it classified and how it did."""

    start: str
    end: str
    n_train: int
    n_test: int
    log_loss: float
    macro_f1: float
    logistic_log_loss: float | None
    fit_s: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass(slots=True)
class BacktestResult:
    """Pooled scores of all blocks (beside the baselines) and the per-block figures."""

    report: EvaluationReport
    blocks: list[BacktestBlock] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The pooled report's dict with a ``blocks`` list added."""
        return self.report.to_dict() | {"blocks": [b.to_dict() for b in self.blocks]}

    def blocks_frame(self) -> pd.DataFrame:
        """One row per block."""
        return pd.DataFrame([b.to_dict() for b in self.blocks])


#: Calendar retraining schedules: block boundaries at the start of each week, month or quarter (UTC).
CALENDAR: Final = {"week": "W-MON", "month": "MS", "quarter": "QS"}


def block_starts(test_times: pd.Series, every: float | str) -> list[pd.Timestamp]:
    """Start of each block: the first test incident, then each retraining after it.

    ``every`` is a number of days (fixed steps from the first test incident) or ``week``,
    ``month`` or ``quarter`` (calendar boundaries, UTC midnight: a monthly model is retrained on
    the first of each month).
    """
    t = pd.to_datetime(test_times, utc=True)
    first, last = t.min(), t.max()
    if isinstance(every, str) and every in CALENDAR:
        bounds = pd.date_range(first.floor("D"), last, freq=CALENDAR[every])
        return [first, *(b for b in bounds if b > first)]
    try:
        days = float(every)
    except ValueError:
        raise InputError(f"retraining interval {every!r}: a number of days or one of {', '.join(CALENDAR)}") from None
    if not 0 < days < 100 * 365:  # also refuses nan and inf
        raise InputError("the retraining interval must be positive (and under a century)")
    step = pd.Timedelta(days=days)
    starts = [first]
    while starts[-1] + step <= last:
        starts.append(starts[-1] + step)
    return starts


def rolling_backtest(
    estimator: IncidentClassifier,
    incidents: pd.DataFrame,
    *,
    test_start: Any = None,
    test_fraction: float = 0.2,
    every: float | str = "month",
    logistic: bool = True,
    progress: Progress | None = None,
) -> BacktestResult:
    """Retrain ``estimator`` on a schedule over the test period and score each block unseen.

    Parameters
    ----------
    estimator
        The classifier to backtest (cloned for each block; never fitted itself).
    incidents
        Labelled canonical incidents (training and test periods together).
    test_start
        First moment of the test period; defaults to the start of the latest
        ``test_fraction`` of incidents.
    every
        Retraining schedule: a number of days, or ``week``, ``month`` or ``quarter``
        (see :func:`block_starts`).
    logistic
        Also refit and score the one-hot logistic on each block's training set (the class prior
        of each block's training set is always scored).
    """
    target = estimator.target
    frame = incidents[incidents[target].notna()].copy()
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True)
    frame = frame.sort_values("occurred_at", kind="stable").reset_index(drop=True)
    t = frame["occurred_at"]
    if test_start is None:
        if not 0 < test_fraction < 1:
            raise InputError("test_fraction must be between 0 and 1")
        start = t.iloc[len(frame) - max(1, round(len(frame) * test_fraction))]
    else:
        start = pd.Timestamp(test_start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    test_mask = t >= start
    if not test_mask.any() or test_mask.all():
        raise InputError(f"the test period from {start} leaves no training or no test incidents")
    starts = block_starts(t[test_mask], every)
    probs: list[np.ndarray] = []
    truths: list[np.ndarray] = []
    decided: list[np.ndarray] = []
    prior_p: list[np.ndarray] = []
    logit_p: list[np.ndarray] = []
    blocks: list[BacktestBlock] = []
    classes: np.ndarray | None = None
    for i, s in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else None
        in_block = (t >= s) & (t < end) if end is not None else (t >= s)
        train = frame[t < s]
        block = frame[in_block]
        if train.empty or block.empty:
            continue
        began = time.perf_counter()
        model = clone(estimator).fit(train)
        fit_s = time.perf_counter() - began
        if classes is None:
            classes = model.classes_
        block = block[block[target].astype(str).isin(classes).to_numpy()]
        if block.empty:
            continue
        # place history: everything outside this block's training set (only strictly earlier rows count)
        raw = model.predict_proba(block, history=frame[t >= s])
        same = list(model.classes_) == list(classes)
        p = raw if same else align_proba(raw, model.classes_, classes)
        chosen = model.decide(raw) if same else np.asarray(classes[p.argmax(axis=1)], dtype=object)
        y = block[target].astype(str).to_numpy(dtype=object)
        probs.append(p)
        truths.append(y)
        decided.append(chosen)
        prior_p.append(prior_proba(train[target].astype(str), classes, len(block)))
        logistic_ll = None
        if logistic:
            lr = OneHotLogistic(timezone=estimator.timezone, target=target).fit(train)
            pl = align_proba(lr.predict_proba(block), lr.classes_, classes)
            logit_p.append(pl)
            logistic_ll = score(y, pl, classes).log_loss
        sc = score(y, p, classes, y_pred=chosen)
        blocks.append(BacktestBlock(
            start=str(s), end=str(end) if end is not None else str(t.iloc[-1]), n_train=len(train),
            n_test=len(block), log_loss=sc.log_loss, macro_f1=sc.macro_f1,
            logistic_log_loss=logistic_ll, fit_s=round(fit_s, 1),
        ))
        if progress is not None:
            progress(f"block {i + 1}/{len(starts)} from {s:%Y-%m-%d}: {len(block):,} incidents, "
                     f"log loss {sc.log_loss:.4f} (trained on {len(train):,} in {fit_s:.0f} s)")
    if classes is None or not probs:
        raise InputError("no block had both training and test incidents")
    y_all = np.concatenate(truths)
    report = EvaluationReport(
        classes=[str(c) for c in classes],
        model=score(y_all, np.vstack(probs), classes, y_pred=np.concatenate(decided), name="model"),
        prior=score(y_all, np.vstack(prior_p), classes, name="prior"),
        logistic=score(y_all, np.vstack(logit_p), classes, name="logistic") if logistic else None,
        split=f"rolling origin from {start:%Y-%m-%d}, retrained every {every}{'' if every in CALENDAR else ' days'}",
        notes={"blocks": len(blocks), "every": every, "test_start": str(start), "history": True},
    )
    return BacktestResult(report=report, blocks=blocks)
