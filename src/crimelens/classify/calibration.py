"""Probability calibration and macro-F1 decision weights, both learnt on held-out incidents.

Two separate jobs, so that one does not spoil the other:

* **Calibration** makes the probabilities honest (log loss). :class:`Calibrator` rescales the
  log-probabilities of a fitted model with one temperature and, optionally, a bias per class
  ("vector scaling" restricted to a shared scale), fitted by minimising the log loss on a
  validation set [1]_. Class biases also absorb a shift in the category mix between the
  training and validation periods.
* **Decisions** pick one class per incident. The most probable class favours the common ones and
  scores a low macro-F1; :func:`fit_decision_weights` learns a weight per class so that
  ``argmax(w * p)`` maximises macro-F1 on the validation set, by coordinate ascent over a grid
  of weights [2]_. Probabilities are left untouched.

References
----------
.. [1] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern neural
   networks", ICML 2017 (temperature and vector scaling).
.. [2] Z. C. Lipton, C. Elkan and B. Narayanaswamy, "Optimal thresholding of classifiers to
   maximize F1 measure", ECML PKDD 2014.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import log_softmax

from crimelens.exceptions import InputError, NotFittedError

FloatMatrix = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class Calibrator:
    """Temperature (and optional per-class bias) scaling of predicted probabilities.

    Parameters
    ----------
    method : {"temperature", "vector", "none"}
        ``temperature``: one scale; ``vector``: one scale plus a bias per class; ``none``:
        identity.
    l2 : float
        Ridge penalty on the biases (keeps them small on small validation sets).

    Attributes
    ----------
    temperature_ : float
        The fitted temperature (>1 softens over-confident probabilities).
    bias_ : ndarray of shape (k,)
        The fitted class biases (zeros for ``temperature``).
    """

    def __init__(self, *, method: str = "vector", l2: float = 1e-3) -> None:
        self.method = method
        self.l2 = l2

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol)."""
        return {"method": self.method, "l2": self.l2}

    def set_params(self, **params: Any) -> Calibrator:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, proba: FloatMatrix, y: IntArray) -> Calibrator:
        """Fit on validation probabilities ``proba`` (n, k) and integer labels ``y``."""
        if self.method not in ("temperature", "vector", "none"):
            raise InputError(f"unknown calibration method {self.method!r}")
        logp = np.log(np.clip(np.asarray(proba, float), 1e-12, 1.0))
        yi = np.asarray(y, np.int64)
        k = logp.shape[1]
        if self.method == "none" or len(yi) == 0:
            self.temperature_, self.bias_ = 1.0, np.zeros(k)
            return self
        use_bias = self.method == "vector"
        rows = np.arange(len(yi))

        def loss(theta: FloatMatrix) -> tuple[float, FloatMatrix]:
            inv_t = np.exp(theta[0])
            b = theta[1:] if use_bias else np.zeros(k)
            z = logp * inv_t + b
            ls = log_softmax(z, axis=1)
            nll = -ls[rows, yi].mean() + self.l2 * float(b @ b)
            g_z = np.exp(ls)
            g_z[rows, yi] -= 1.0
            g_z /= len(yi)
            grad_t = float((g_z * logp).sum()) * inv_t
            grads = [grad_t]
            if use_bias:
                grads.extend(g_z.sum(axis=0) + 2 * self.l2 * b)
            return float(nll), np.asarray(grads, float)

        x0 = np.zeros(1 + (k if use_bias else 0))
        res = minimize(loss, x0, jac=True, method="L-BFGS-B")
        self.temperature_ = float(np.exp(-res.x[0]))
        self.bias_ = np.asarray(res.x[1:], float) if use_bias else np.zeros(k)
        return self

    def transform(self, proba: FloatMatrix) -> FloatMatrix:
        """Calibrated probabilities."""
        if not hasattr(self, "temperature_"):
            raise NotFittedError("Calibrator is not fitted; call fit first")
        logp = np.log(np.clip(np.asarray(proba, float), 1e-12, 1.0))
        return np.asarray(np.exp(log_softmax(logp / self.temperature_ + self.bias_, axis=1)), float)


def macro_f1(y: IntArray, pred: IntArray, k: int) -> float:
    """Macro-averaged F1 over the ``k`` classes present in ``y`` (fast, for search loops)."""
    cm = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype(float)
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros(k), where=denom > 0)
    present = support > 0
    return float(f1[present].mean()) if present.any() else 0.0


def fit_decision_weights(
    proba: FloatMatrix, y: IntArray, *, grid: FloatMatrix | None = None, rounds: int = 3
) -> FloatMatrix:
    """Class weights ``w`` such that ``argmax(w * proba)`` maximises macro-F1 on ``(proba, y)``.

    Coordinate ascent: each round tries every grid value for each class weight in turn and
    keeps the best. Starts at ``1 / prior`` normalised (the balanced rule), which is already a
    good macro-F1 decision. Returns weights normalised to sum to the number of classes.
    """
    p = np.asarray(proba, float)
    yi = np.asarray(y, np.int64)
    k = p.shape[1]
    g = np.geomspace(0.25, 8.0, 25) if grid is None else np.asarray(grid, float)
    prior = np.bincount(yi, minlength=k) / max(len(yi), 1)
    w = 1.0 / np.maximum(prior, 1e-3)
    w = w / w.sum() * k

    def f1(weights: FloatMatrix) -> float:
        return macro_f1(yi, (p * weights).argmax(axis=1), k)

    best = f1(w)
    for base_eq in (np.ones(k),):
        if f1(base_eq) > best:
            w, best = base_eq, f1(base_eq)
    for _ in range(rounds):
        improved = False
        for j in range(k):
            for v in g:
                trial = w.copy()
                trial[j] = w[j] * v if v != 1.0 else w[j]
                s = f1(trial)
                if s > best + 1e-6:
                    best, w, improved = s, trial, True
        if not improved:
            break
    return np.asarray(w / w.sum() * k, float)
