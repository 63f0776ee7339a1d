"""json_safe: analysis results become plain JSON values."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from crimelens.jsonsafe import json_safe


def test_numpy_non_finite_dates_and_nesting() -> None:
    value = {1: np.int64(3), "f": np.float32(0.5), "nan": float("nan"), "inf": np.float64(np.inf),
             "arr": np.array([1.0, np.nan]), "when": pd.Timestamp("2024-01-02", tz="UTC"), "day": date(2024, 1, 3),
             "path": Path("/tmp/x"), "nested": [(np.bool_(True), None)], "text": "ok"}
    out = json_safe(value)
    assert out == {"1": 3, "f": 0.5, "nan": None, "inf": None, "arr": [1.0, None],
                   "when": "2024-01-02T00:00:00+00:00", "day": "2024-01-03", "path": "/tmp/x",
                   "nested": [[True, None]], "text": "ok"}
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert type(out["1"]) is int and type(out["nested"][0][0]) is bool
