"""Neighbourhood context: the recent category mix around an incident's place, without leakage.

Crime concentrates at places and repeats there: a few addresses and street segments account
for most incidents, and each tends to keep its own mix of offences [1]_ [2]_. The strongest
signal for "what kind of incident is this?" is therefore "what kinds of incident happened
here before?". This module computes it as a leakage-free target encoding [3]_ ordered by
time: for each incident and each *key* (the exact point, square cells of several sizes, an
area, a premises type at a point) it counts the labelled reference incidents with the same key
that were **known strictly before** the incident (minus an optional lag), overall and in
recent windows, and returns

* ``ctx_<key>_<window>_n`` -- ``log1p`` of the count, how much evidence there is;
* ``ctx_<key>_<window>_<class>`` -- the share of each class, shrunk towards the category mix
  of all reference incidents known before that moment, ``(n_c + a p_c) / (n + a)``.

A reference incident is known from its ``reported_at`` when the source gives one, else from
its ``occurred_at``. Strict inequality excludes the incident itself and any incident recorded
at the very same moment and place (often the same event filed under several offences).
Windows end at ``min(t - lag, end of reference)``, so a model scored on incidents after its
training period sees windows of the same length as in training rather than empty ones.

References
----------
.. [1] D. Weisburd, "The law of crime concentration and the criminology of place",
   Criminology 53(2), 133-157, 2015.
.. [2] G. Farrell and K. Pease, "Repeat victimization", Crime Prevention Studies 12, 2001.
.. [3] L. Prokhorenkova, G. Gusev, A. Vorobev, A. V. Dorogush and A. Gulin, "CatBoost:
   unbiased boosting with categorical features", NeurIPS 2018 (ordered target statistics).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.classify.frame import local_times, metric_xy
from crimelens.exceptions import InputError, NotFittedError

DEFAULT_KEYS: Final = ("point", "point+premises", "cell:150", "cell:600", "neighbourhood")
DEFAULT_WINDOWS: Final = (None, 365, 28)
_MINUTE: Final = 60_000_000_000  # nanoseconds


def safe_name(text: str) -> str:
    """A feature-name-safe version of a class label (letters, digits, underscores)."""
    return re.sub(r"\W+", "_", str(text)).strip("_").lower() or "x"


class ContextFeatures:
    """Leakage-free recent category mix around each incident's place.

    Parameters
    ----------
    target : str
        Column with the class label in the reference incidents.
    keys : sequence of str
        ``point`` (coordinates rounded to ``point_metres``), ``cell:<metres>`` (square cells),
        ``hour:<h>`` (local hour in bins of ``h`` hours), ``all`` (the whole city), any
        incident column (``neighbourhood``, ``premises``, ``beat``...), or a ``+``-joined
        combination (``point+premises``).
    windows : sequence of int or None
        Look-back windows in days; ``None`` means all earlier history.
    key_windows : mapping of str to sequence of int or None, optional
        Windows of particular keys, replacing ``windows`` for them; a key named only here is
        added to ``keys`` (``{"all": (28, 91)}`` adds the city-wide mix of the last 28 and 91
        days, which follows a drifting category mix).
    lag_days : float
        Only reference incidents known at least this long before the incident count.
    prior_strength : float
        Pseudo-count ``a`` of the shrinkage towards the overall category mix.
    point_metres : float
        Rounding of coordinates for the ``point`` key.
    timezone : str, optional
        IANA zone of ``hour:<h>`` key parts (local hour bins of ``h`` hours).

    Attributes
    ----------
    classes_ : ndarray of str
        The labels, in the order of the share columns.
    feature_names_ : list of str
        Output column names.
    """

    def __init__(
        self,
        *,
        target: str = "category",
        keys: Sequence[str] = DEFAULT_KEYS,
        windows: Sequence[int | None] = DEFAULT_WINDOWS,
        key_windows: Mapping[str, Sequence[int | None]] | None = None,
        lag_days: float = 0.0,
        prior_strength: float = 3.0,
        point_metres: float = 5.0,
        timezone: str | None = None,
    ) -> None:
        self.target = target
        self.keys = keys
        self.windows = windows
        self.key_windows = key_windows
        self.lag_days = lag_days
        self.prior_strength = prior_strength
        self.point_metres = point_metres
        self.timezone = timezone

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol)."""
        return {k: getattr(self, k) for k in (
            "target", "keys", "windows", "key_windows", "lag_days", "prior_strength", "point_metres", "timezone"
        )}

    def set_params(self, **params: Any) -> ContextFeatures:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, incidents: pd.DataFrame, y: Any = None) -> ContextFeatures:
        """Keep the labelled reference incidents (times, keys, labels)."""
        if self.target not in incidents:
            raise InputError(f"context features need the label column {self.target!r}")
        labels = incidents[self.target]
        if labels.isna().any():
            raise InputError(f"label column {self.target!r} has missing values")
        self.classes_ = np.array(sorted(labels.astype(str).unique()), dtype=object)

        has_xy = ("x" in incidents and incidents["x"].notna().any()) or (
            "lon" in incidents and incidents["lon"].notna().any())
        self.crs_ = metric_xy(incidents)[2] if has_xy else None
        self.ref_ = self._reference(incidents)
        names: list[str] = []
        for key in self.all_keys():
            for w in self.windows_of(key):
                stem = f"ctx_{safe_name(key)}_{'all' if w is None else f'{w}d'}"
                names.append(f"{stem}_n")
                names.extend(f"{stem}_{safe_name(c)}" for c in self.classes_)
        self.feature_names_ = names
        return self

    def all_keys(self) -> list[str]:
        """``keys`` followed by the keys named only in ``key_windows``."""
        keys = list(self.keys)
        return keys + [k for k in (self.key_windows or {}) if k not in keys]

    def windows_of(self, key: str) -> list[int | None]:
        """The look-back windows of ``key``."""
        return list((self.key_windows or {}).get(key, self.windows))

    def _reference(self, incidents: pd.DataFrame) -> dict[str, Any]:
        occurred = minutes(incidents["occurred_at"])
        known = occurred
        if "reported_at" in incidents and incidents["reported_at"].notna().any():
            rep = minutes(incidents["reported_at"].fillna(incidents["occurred_at"]))
            known = np.maximum(occurred, rep)
        lab = pd.Categorical(incidents[self.target].astype(str), categories=list(self.classes_))
        codes = np.asarray(lab.codes, np.int64)
        keep = codes >= 0
        return {
            "t": known[keep],
            "y": codes[keep],
            "keys": {k: v[keep] for k, v in self.key_values(incidents).items()},
        }

    def transform(self, incidents: pd.DataFrame, *, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Context features of ``incidents`` from the reference (plus ``history``, if given).

        Only reference incidents known strictly before ``occurred_at - lag`` contribute, so
        transforming the training incidents themselves leaks nothing from their own labels or
        from the future.
        """
        if not hasattr(self, "ref_"):
            raise NotFittedError("ContextFeatures is not fitted; call fit first")
        ref = self.ref_
        if history is not None and len(history):
            extra = self._reference(history.dropna(subset=[self.target]))
            ref = {
                "t": np.concatenate([ref["t"], extra["t"]]),
                "y": np.concatenate([ref["y"], extra["y"]]),
                "keys": {k: np.concatenate([ref["keys"][k], extra["keys"][k]]) for k in ref["keys"]},
            }
        n_cls = len(self.classes_)
        lag = round(self.lag_days * 24 * 60)
        q_t = minutes(incidents["occurred_at"]) - lag
        ref_end = int(ref["t"].max()) + 1 if len(ref["t"]) else 0
        q_t = np.minimum(q_t, ref_end)
        q_keys = self.key_values(incidents)
        zeros = np.zeros(len(q_t), np.int64)
        out: dict[str, npt.NDArray[np.float64]] = {}
        a = float(self.prior_strength)
        keys = self.all_keys()
        windows = list(dict.fromkeys(w for key in keys for w in self.windows_of(key)))
        for w in windows:
            lo = None if w is None else q_t - int(w) * 24 * 60
            prior = window_counts(np.zeros(len(ref["t"]), np.int64), ref["t"], ref["y"], zeros, q_t, lo, n_cls)
            tot = prior.sum(axis=1, keepdims=True)
            p = np.where(tot > 0, prior / np.maximum(tot, 1), 1.0 / n_cls)
            for key in (k for k in keys if w in self.windows_of(k)):
                codes_r, codes_q = joint_codes(ref["keys"][key], q_keys[key])
                c = window_counts(codes_r, ref["t"], ref["y"], codes_q, q_t, lo, n_cls)
                n = c.sum(axis=1, keepdims=True)
                denom = n + a
                share = np.divide(c + a * p, denom, out=np.broadcast_to(p, c.shape).copy(), where=denom > 0)
                stem = f"ctx_{safe_name(key)}_{'all' if w is None else f'{w}d'}"
                out[f"{stem}_n"] = np.log1p(n[:, 0]).astype(float)
                for j, cls in enumerate(self.classes_):
                    out[f"{stem}_{safe_name(cls)}"] = share[:, j]
        frame = pd.DataFrame(out, index=incidents.index)
        return frame[self.feature_names_]

    def key_values(self, incidents: pd.DataFrame) -> dict[str, npt.NDArray[np.object_]]:
        """The value of each key for each incident (``None`` where a part is missing)."""
        cache: dict[str, pd.Series] = {}
        out: dict[str, npt.NDArray[np.object_]] = {}
        for key in self.all_keys():
            pieces = []
            for part in key.split("+"):
                if part not in cache:
                    cache[part] = self._part(incidents, part, cache)
                pieces.append(cache[part])
            missing = np.logical_or.reduce([pc.isna().to_numpy() for pc in pieces])
            joined = pieces[0].astype(str)
            for extra in pieces[1:]:
                joined = joined + "|" + extra.astype(str)
            out[key] = joined.astype(object).where(~missing, None).to_numpy(dtype=object)
        return out

    def _part(self, incidents: pd.DataFrame, part: str, cache: dict[str, pd.Series]) -> pd.Series:
        """Values of one key part: ``all``, ``point``, ``cell:<m>``, ``hour:<h>`` or a column."""

        idx = incidents.index
        if part == "all":
            return pd.Series("all", index=idx, dtype="object")
        if part == "point" or part.startswith("cell:"):
            if "__x" not in cache:
                xs, ys, _ = metric_xy(incidents, getattr(self, "crs_", None))
                cache["__x"], cache["__y"] = pd.Series(xs, index=idx), pd.Series(ys, index=idx)
            size = self.point_metres if part == "point" else float(part.split(":", 1)[1])
            if size <= 0:
                raise InputError(f"context key {part!r}: size must be positive")
            with np.errstate(invalid="ignore"):
                ix = np.floor(cache["__x"].to_numpy(float) / size)
                iy = np.floor(cache["__y"].to_numpy(float) / size)
            ok = np.isfinite(ix) & np.isfinite(iy)
            code = np.where(ok, ix, 0).astype(np.int64) * 10_000_019 + np.where(ok, iy, 0).astype(np.int64)
            return pd.Series(code, index=idx).astype(object).where(ok, None)
        if part.startswith("hour:"):
            width = int(part.split(":", 1)[1])
            hours = local_times(incidents["occurred_at"], self.timezone).dt.hour // max(width, 1)
            fine = incidents["time_precision"].isin(("minute", "hour")) if "time_precision" in incidents else True
            binned: pd.Series = hours.astype(object).where(fine, None)
            return binned
        if part in incidents:
            return incidents[part].astype("string").str.strip().str.lower().astype(object)
        return pd.Series(None, index=idx, dtype="object")


def minutes(ts: pd.Series) -> npt.NDArray[np.int64]:
    """Timestamps as integer minutes since the epoch."""
    t = pd.to_datetime(ts, utc=True)
    return np.asarray(t.to_numpy(dtype="datetime64[ns]").astype(np.int64) // _MINUTE, np.int64)


def joint_codes(
    ref: npt.NDArray[np.object_], query: npt.NDArray[np.object_]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Integer codes of reference and query key values in one shared vocabulary (-1: missing)."""
    codes, _ = pd.factorize(np.concatenate([ref, query]), use_na_sentinel=True)
    codes = np.asarray(codes, np.int64)
    return codes[: len(ref)], codes[len(ref):]


def window_counts(
    ref_key: npt.NDArray[np.int64],
    ref_t: npt.NDArray[np.int64],
    ref_y: npt.NDArray[np.int64],
    q_key: npt.NDArray[np.int64],
    q_t: npt.NDArray[np.int64],
    q_lo: npt.NDArray[np.int64] | None,
    n_classes: int,
) -> npt.NDArray[np.float64]:
    """Per-class counts of reference rows with the query's key and ``q_lo <= t < q_t``.

    Rows are sorted by (key, time); a composite ``key * span + time`` turns each question into
    two binary searches over prefix sums, O((n + m) log n) for n reference and m query rows.
    Missing keys (code -1) count nothing.
    """
    out = np.zeros((len(q_t), n_classes), float)
    ok_r = ref_key >= 0
    if not ok_r.any() or len(q_t) == 0:
        return out
    rk, rt, ry = ref_key[ok_r], ref_t[ok_r], ref_y[ok_r]
    t0 = min(int(rt.min()), int(q_t.min()) if q_lo is None else int(q_lo.min()))
    span = max(int(rt.max()), int(q_t.max())) - t0 + 2
    order = np.lexsort((rt, rk))
    comp = rk[order] * span + (rt[order] - t0)
    onehot = np.zeros((len(order) + 1, n_classes), float)
    onehot[np.arange(1, len(order) + 1), ry[order]] = 1.0
    cum = np.cumsum(onehot, axis=0)
    ok_q = q_key >= 0
    base = q_key[ok_q] * span
    hi = np.searchsorted(comp, base + (q_t[ok_q] - t0), side="left")
    lo_t = np.zeros(ok_q.sum(), np.int64) if q_lo is None else np.maximum(q_lo[ok_q] - t0, 0)
    lo = np.searchsorted(comp, base + lo_t, side="left")
    out[ok_q] = cum[hi] - cum[np.minimum(lo, hi)]
    return out
