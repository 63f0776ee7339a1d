"""Incident features for crime-type classification: time, place, premises and context.

Each incident becomes one row of numbers a classifier can read:

* **time** -- hour, weekday, month and day of year, each also as a point on the unit circle
  (``sin``/``cos``) so that 23:00 sits next to 00:00 and December next to January
  [1]_; fields finer than the record's ``time_precision`` are left missing, never invented
  (a day-precision record has no hour);
* **place** -- metric coordinates, two rotated axes (trees split on axis-parallel lines, the
  rotations let them cut diagonals cheaply), the square grid cell, and area identifiers;
* **premises** -- the published place type, as a category;
* **extra** -- chosen numeric or flag fields a source publishes beyond the canonical columns
  (``extra_features``), read from a column of that name or from the canonical ``extra`` JSON;
* **context** -- the recent category mix around the place, from
  :class:`crimelens.classify.context.ContextFeatures` (strictly earlier incidents only);
* **profile** -- the cross-fitted category mix of each place over the training period, from
  :class:`crimelens.classify.profile.PlaceProfile`.

Use :meth:`IncidentFeatures.fit_transform` on training incidents (it cross-fits the profile)
and :meth:`IncidentFeatures.transform` on anything else.

Categorical columns come back as pandas ``category`` dtype with the vocabulary learnt in
``fit`` (unseen values become missing), which LightGBM and XGBoost read natively and which
:func:`crimelens.classify.models.make_model` one-hot encodes for the other learners.

References
----------
.. [1] I. London, "Encoding cyclical continuous features -- 24-hour time", 2016; and
   D. Chakraborty and H. Elzarka, "Advanced machine learning techniques for building
   performance simulation: a comparative analysis", J. Build. Perf. Simul. 12(2), 2019
   (sine/cosine encodings of cyclic time).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from crimelens.classify.context import ContextFeatures, safe_name
from crimelens.classify.frame import local_times, metric_xy
from crimelens.classify.profile import PlaceProfile
from crimelens.exceptions import InputError, NotFittedError
from crimelens.geo.grid import SquareGrid

#: ``time_precision`` values at which each time field is meaningful.
_HOUR_OK: Final = ("minute", "hour")
_DAY_OK: Final = ("minute", "hour", "day")
_MONTH_OK: Final = ("minute", "hour", "day", "month")

#: Area columns used as categorical features when present and filled.
DEFAULT_AREAS: Final = ("neighbourhood", "district", "beat", "ward", "community_area", "lsoa")


def time_features(
    occurred_at: pd.Series, time_precision: pd.Series | None = None, *, timezone: str | None = None
) -> pd.DataFrame:
    """Calendar fields and their cyclic encodings, respecting each record's time precision.

    Parameters
    ----------
    occurred_at : Series of tz-aware timestamps
        Start of each occurrence (UTC in the canonical table).
    time_precision : Series of str, optional
        ``minute|hour|day|month|year``; fields finer than it are set to NaN.
    timezone : str, optional
        IANA zone for wall-clock fields; the hour of a Toronto incident is its Toronto hour.

    Returns
    -------
    DataFrame
        ``hour, weekday, month, dayofyear, day, weekend, year`` and ``*_sin``/``*_cos`` pairs.
        The day of the month is kept because sources fill unknown days with the 1st.
    """
    t = local_times(occurred_at, timezone)
    prec = (
        pd.Series("minute", index=occurred_at.index)
        if time_precision is None
        else time_precision.astype("string").fillna("day")
    )
    hour_ok = prec.isin(_HOUR_OK).to_numpy()
    day_ok = prec.isin(_DAY_OK).to_numpy()
    month_ok = prec.isin(_MONTH_OK).to_numpy()
    hour = np.where(hour_ok, t.dt.hour + t.dt.minute / 60.0, np.nan)
    weekday = np.where(day_ok, t.dt.day_of_week, np.nan)
    doy = np.where(day_ok, t.dt.day_of_year - 1, np.nan)
    month = np.where(month_ok, t.dt.month - 1, np.nan)
    out: dict[str, Any] = {
        "hour": hour,
        "weekday": weekday,
        "month": month + 1,
        "dayofyear": doy + 1,
        "day": np.where(day_ok, t.dt.day, np.nan),
        "weekend": np.where(day_ok, (weekday >= 5).astype(float), np.nan),
        "year": (t.dt.year + (t.dt.day_of_year - 1) / 366.0).to_numpy(float),
    }
    for name, value, period in (
        ("hour", hour, 24.0), ("weekday", weekday, 7.0), ("month", month, 12.0), ("doy", doy, 366.0)
    ):
        angle = 2 * np.pi * np.asarray(value, float) / period
        out[f"{name}_sin"] = np.sin(angle)
        out[f"{name}_cos"] = np.cos(angle)
    return pd.DataFrame(out, index=occurred_at.index)


_FLAGS: Final = {"true": 1.0, "false": 0.0, "yes": 1.0, "no": 0.0, "y": 1.0, "n": 0.0}


def extra_values(incidents: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """Numeric values of the fields ``names``: a column of that name, else a key of the ``extra`` JSON.

    Numbers are parsed, ``true/false/yes/no/y/n`` become 1/0, anything else is missing. Returns
    one ``extra_<name>`` column per field.
    """
    parsed: list[dict[str, Any]] | None = None
    out: dict[str, Any] = {}
    for name in names:
        if name in incidents:
            raw = incidents[name]
        else:
            if parsed is None:
                col = incidents["extra"] if "extra" in incidents else pd.Series(None, index=incidents.index)
                parsed = [_json_object(v) for v in col]
            raw = pd.Series([row.get(name) for row in parsed], index=incidents.index, dtype=object)
        text = raw.astype("string").str.strip().str.lower()
        value = pd.to_numeric(text, errors="coerce").astype(float)
        out[f"extra_{safe_name(name)}"] = value.fillna(text.map(_FLAGS).astype(float)).to_numpy(float)
    return pd.DataFrame(out, index=incidents.index)


def _json_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not value:
        return {}
    try:
        obj = json.loads(value)
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _known(values: pd.Series, levels: list[str]) -> pd.Series:
    """``values`` as strings, with levels outside ``levels`` set to missing."""
    text = values.astype("string")
    return text.where(text.isin(levels))


class IncidentFeatures:
    """Turn canonical incidents into a numeric feature table (a scikit-learn style transformer).

    Parameters
    ----------
    timezone : str, optional
        IANA zone for hour/weekday (UTC when None).
    cell_size : float
        Side in metres of the square grid whose cell id is a feature.
    areas : sequence of str
        Area columns to use as categories when present and filled.
    max_categories : int
        Levels kept per categorical column (the most frequent); the rest become missing.
    extra_features : sequence of str
        Numeric or flag fields beyond the canonical columns (see :func:`extra_values`), e.g. a
        source's "near a pub" flag kept in the ``extra`` JSON.
    context : bool
        Add :class:`~crimelens.classify.context.ContextFeatures` (recent category mix).
    context_params : dict, optional
        Keyword arguments for :class:`~crimelens.classify.context.ContextFeatures`.
    profile : bool
        Add :class:`~crimelens.classify.profile.PlaceProfile` (cross-fitted place mix).
    profile_params : dict, optional
        Keyword arguments for :class:`~crimelens.classify.profile.PlaceProfile`.
    target : str
        Column holding the label (used by the context features).

    Attributes
    ----------
    grid_ : SquareGrid
        The grid learnt from the training coordinates.
    vocab_ : dict of str to list
        Category levels of each categorical feature.
    context_ : ContextFeatures or None
        The fitted context featuriser.
    profile_ : PlaceProfile or None
        The fitted place profile.
    feature_names_ : list of str
        Output column names, in order.
    """

    def __init__(
        self,
        *,
        timezone: str | None = None,
        cell_size: float = 500.0,
        areas: Sequence[str] = DEFAULT_AREAS,
        max_categories: int = 400,
        extra_features: Sequence[str] = (),
        context: bool = True,
        context_params: dict[str, Any] | None = None,
        profile: bool = True,
        profile_params: dict[str, Any] | None = None,
        target: str = "category",
    ) -> None:
        self.timezone = timezone
        self.cell_size = cell_size
        self.areas = areas
        self.max_categories = max_categories
        self.extra_features = extra_features
        self.context = context
        self.context_params = context_params
        self.profile = profile
        self.profile_params = profile_params
        self.target = target

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol)."""
        return {k: getattr(self, k) for k in (
            "timezone", "cell_size", "areas", "max_categories", "extra_features", "context", "context_params",
            "profile", "profile_params", "target",
        )}

    def set_params(self, **params: Any) -> IncidentFeatures:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, incidents: pd.DataFrame, y: Any = None) -> IncidentFeatures:
        """Learn the grid, the category vocabularies and the context reference."""
        if len(incidents) == 0:
            raise InputError("no incidents to learn features from")
        x, yy, crs = metric_xy(incidents)
        self.crs_ = crs
        ok = np.isfinite(x) & np.isfinite(yy)
        self.grid_ = (
            SquareGrid.covering(x[ok], yy[ok], self.cell_size, crs) if ok.any() else None
        )
        cats = self._raw_categoricals(incidents, x, yy)
        self.vocab_ = {}
        for name, col in cats.items():
            counts = col.dropna().value_counts()
            if len(counts) == 0 or (name in self.areas and col.notna().mean() < 0.5):
                continue
            self.vocab_[name] = [str(v) for v in counts.index[: self.max_categories]]
        self.context_ = None
        if self.context:
            self.context_ = ContextFeatures(
                target=self.target, timezone=self.timezone, **(self.context_params or {})
            ).fit(incidents)
        self.profile_ = None
        if self.profile:
            self.profile_ = PlaceProfile(
                target=self.target, timezone=self.timezone, **(self.profile_params or {})
            ).fit(incidents)
        self.feature_names_ = list(self.transform(incidents.iloc[:1]).columns)
        return self

    def transform(self, incidents: pd.DataFrame, *, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Feature table for ``incidents``.

        ``history`` adds labelled incidents (e.g. those recorded after training) to the
        context reference; only incidents strictly earlier than each row are ever used.
        """
        if not hasattr(self, "vocab_"):
            raise NotFittedError("IncidentFeatures is not fitted; call fit first")
        x, yy, _ = metric_xy(incidents, self.crs_)
        parts = [time_features(
            incidents["occurred_at"], incidents.get("time_precision"), timezone=self.timezone
        )]
        place = pd.DataFrame(
            {"x": x, "y": yy, "x_plus_y": (x + yy) / np.sqrt(2), "x_minus_y": (x - yy) / np.sqrt(2)},
            index=incidents.index,
        )
        parts.append(place)
        raw = self._raw_categoricals(incidents, x, yy)
        cat = pd.DataFrame(
            {name: pd.Categorical(_known(raw[name], levels), categories=levels)
             for name, levels in self.vocab_.items()},
            index=incidents.index,
        )
        parts.append(cat)
        extra = list(getattr(self, "extra_features", ()))  # absent in models saved before it existed
        if extra:
            parts.append(extra_values(incidents, extra))
        if self.context_ is not None:
            parts.append(self.context_.transform(incidents, history=history))
        if self.profile_ is not None:
            parts.append(self.profile_.transform(incidents, history=history))
        return pd.concat(parts, axis=1)

    def fit_transform(self, incidents: pd.DataFrame, y: Any = None) -> pd.DataFrame:
        """Fit, then the features of the training incidents themselves (profile cross-fitted)."""
        self.fit(incidents)
        if self.profile_ is None:
            return self.transform(incidents)
        no_profile = [c for c in self.feature_names_ if not c.startswith("prof_")]
        saved, self.profile_ = self.profile_, None
        try:
            base = self.transform(incidents)
        finally:
            self.profile_ = saved
        prof = saved.fit_transform(incidents)
        return pd.concat([base[no_profile], prof], axis=1)[self.feature_names_]

    def _raw_categoricals(self, incidents: pd.DataFrame, x: np.ndarray, y: np.ndarray) -> dict[str, pd.Series]:
        out: dict[str, pd.Series] = {}
        grid: SquareGrid | None = getattr(self, "grid_", None)
        if grid is not None:
            cell = grid.cell_of(x, y)
            out["cell"] = pd.Series(cell.astype(str), index=incidents.index, dtype=object).where(cell >= 0, None)
        if "premises" in incidents:
            out["premises"] = incidents["premises"].astype("string").str.strip().str.lower()
        for area in self.areas:
            if area in incidents:
                out[area] = incidents[area].astype("string")
        return out
