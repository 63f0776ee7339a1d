"""Crime-type classification from time, place, premises and place history, with explanations.

:class:`IncidentClassifier` predicts an incident's category as calibrated probabilities, scored
with :func:`score` beside the class prior (:func:`prior_proba`) and :class:`OneHotLogistic`.
Explanations (SHAP, partial dependence) are in :mod:`crimelens.classify.explain`; model
selection in :mod:`crimelens.classify.selection`; saving and loading in
:mod:`crimelens.classify.persistence`.
"""

from crimelens.classify.baselines import OneHotLogistic
from crimelens.classify.calibration import Calibrator, fit_decision_weights
from crimelens.classify.classifier import IncidentClassifier
from crimelens.classify.context import ContextFeatures
from crimelens.classify.features import IncidentFeatures, time_features
from crimelens.classify.metrics import ClassificationScores, EvaluationReport, prior_proba, score
from crimelens.classify.models import MODELS, make_model
from crimelens.classify.profile import PlaceProfile

__all__ = [
    "MODELS",
    "Calibrator",
    "ClassificationScores",
    "ContextFeatures",
    "EvaluationReport",
    "IncidentClassifier",
    "IncidentFeatures",
    "OneHotLogistic",
    "PlaceProfile",
    "fit_decision_weights",
    "make_model",
    "prior_proba",
    "score",
    "time_features",
]
