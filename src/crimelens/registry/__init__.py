"""Model registry (core): versioned manifests, aliases and promotion rules over a directory."""

from crimelens.registry.manifest import Manifest, RegistryError, read_manifest
from crimelens.registry.promotion import DEFAULT_METRIC, PromotionDecision, PromotionRule, decide, metric_for
from crimelens.registry.store import ALIASES, ModelRegistry
from crimelens.registry.triggers import ModelState, RetrainPolicy, retrain_reasons, schema_fingerprint

__all__ = [
    "ALIASES",
    "DEFAULT_METRIC",
    "Manifest",
    "ModelRegistry",
    "ModelState",
    "PromotionDecision",
    "PromotionRule",
    "RegistryError",
    "RetrainPolicy",
    "decide",
    "metric_for",
    "read_manifest",
    "retrain_reasons",
    "schema_fingerprint",
]
