"""Alerts on unusual spikes and series: the pure core (no network, database or settings).

* :mod:`~crimelens.alerts.panel` -- daily counts per area × category;
* :mod:`~crimelens.alerts.expected` -- expected counts from recent history and seasonality, with a
  negative binomial predictive distribution and prediction interval;
* :mod:`~crimelens.alerts.control` -- EWMA and CUSUM charts; :mod:`~crimelens.alerts.stl` -- STL
  residual scores;
* :mod:`~crimelens.alerts.detect` -- scans with false discovery rate control
  (:mod:`~crimelens.alerts.multiple`);
* :mod:`~crimelens.alerts.rules` / :mod:`~crimelens.alerts.series` -- user rules (near-repeat
  series, watched offences, area thresholds) and subscriptions;
* :mod:`~crimelens.alerts.dedup` -- de-duplication and cool-down; :mod:`~crimelens.alerts.feedback`
  -- precision from analyst feedback; :mod:`~crimelens.alerts.incremental` -- evaluation on
  arrival; :mod:`~crimelens.alerts.evaluation` -- false-alert rate, recall and delay.

Delivery and storage live in the adapters (:mod:`crimelens.notify`).
"""

from crimelens.alerts.dedup import DedupResult, deduplicate
from crimelens.alerts.detect import ScanResult, SpikeDetector, attach_incidents
from crimelens.alerts.expected import BaselineModel
from crimelens.alerts.feedback import precision_over_time
from crimelens.alerts.incremental import ArrivalEvaluator, ArrivalResult
from crimelens.alerts.model import Alert, severity_rank
from crimelens.alerts.panel import CountPanel
from crimelens.alerts.rules import Rule, RuleBook, Subscription
from crimelens.alerts.series import evaluate_rule, evaluate_rules

__all__ = [
    "Alert",
    "ArrivalEvaluator",
    "ArrivalResult",
    "BaselineModel",
    "CountPanel",
    "DedupResult",
    "Rule",
    "RuleBook",
    "ScanResult",
    "SpikeDetector",
    "Subscription",
    "attach_incidents",
    "deduplicate",
    "evaluate_rule",
    "evaluate_rules",
    "precision_over_time",
    "severity_rank",
]
