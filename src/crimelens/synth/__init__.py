"""Seeded synthetic cities with known ground truth, for tests, demos and benchmarks.

A city is laid on real coordinates (Chicago by default) with a street grid, covariate
surfaces, persistent, street-scale and drifting hot spots, category-specific daily, weekly and
annual cycles, and near-repeat contagion as a self-exciting point process (Mohler et al. 2011).
Its incidents come out as the canonical table or as a portal file (optionally dirty), and its
ground truth says what any analysis of it should find.

>>> from crimelens.synth import CityConfig, generate_city
>>> city = generate_city(CityConfig(n_incidents=1_000, days=30, seed=1, size_m=5_000))
>>> city.incidents["source"].unique().tolist()
['synthetic']
"""

from __future__ import annotations

from crimelens.synth.city import SyntheticCity, generate_city
from crimelens.synth.config import CityConfig, DirtConfig, DirtReport, RecordingBias
from crimelens.synth.portal import CHICAGO_COLUMNS, FORMATS, portal_frame, write_portal
from crimelens.synth.truth import GroundTruth

__all__ = [
    "CHICAGO_COLUMNS",
    "FORMATS",
    "CityConfig",
    "DirtConfig",
    "DirtReport",
    "GroundTruth",
    "RecordingBias",
    "SyntheticCity",
    "generate_city",
    "portal_frame",
    "write_portal",
]
