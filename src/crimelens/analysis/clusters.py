"""Point clusters in metres: DBSCAN, HDBSCAN and K-Means (scikit-learn) on incident locations.

* **DBSCAN** (Ester et al. 1996) -- a cluster is a dense region: points with at least
  ``min_samples`` incidents within ``eps`` metres, and everything reachable from them. Noise is
  labelled ``-1``. The analyst's question "where do incidents pile up within 200 m?" maps
  directly onto ``eps``.
* **HDBSCAN** (Campello, Moulavi & Sander 2013) -- DBSCAN over all ``eps`` at once, keeping the
  most stable clusters; only ``min_cluster_size`` is needed.
* **K-Means** (Lloyd 1982) -- partitions every incident into ``n_clusters`` groups around
  centres; no noise. Useful for districting, not for finding hot spots.

Coordinates are metres in the dataset's local CRS, never degrees. DBSCAN and K-Means accept
weighted locations, so they can run on fine cell counts from the store (``cell:10``) with the
count as sample weight -- the result equals clustering every incident at its cell centre, without
loading incidents. HDBSCAN has no weights, so weighted cells are expanded to repeated points.

Clusters are relabelled by size (0 = largest) and summarised by weighted mean centre, standard
distance and convex hull.

References
----------
Ester, M., Kriegel, H.-P., Sander, J. & Xu, X. (1996). A density-based algorithm for discovering
clusters in large spatial databases with noise. *Proc. KDD-96*, 226-231.
Campello, R. J. G. B., Moulavi, D. & Sander, J. (2013). Density-based clustering based on
hierarchical density estimates. *PAKDD 2013*, LNCS 7819, 160-172.
Lloyd, S. (1982). Least squares quantization in PCM. *IEEE Trans. Inf. Theory* 28(2), 129-137.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator

from crimelens.analysis.results import ClusterResult
from crimelens.analysis.units import UnitCounts
from crimelens.exceptions import InputError, NotFittedError
from crimelens.geo.weights import FloatArray

ClusterMethod = Literal["dbscan", "hdbscan", "kmeans"]


def _points(X: UnitCounts | pd.DataFrame) -> tuple[FloatArray, FloatArray, FloatArray, str | None]:
    if isinstance(X, UnitCounts):
        keep = X.counts > 0
        return X.x[keep], X.y[keep], X.counts[keep], X.crs
    if isinstance(X, pd.DataFrame) and {"x", "y"} <= set(X.columns):
        x, y = X["x"].to_numpy(float), X["y"].to_numpy(float)
        w = X["count"].to_numpy(float) if "count" in X else np.ones(len(X))
        ok = np.isfinite(x) & np.isfinite(y)
        crs = X["crs"].dropna().iloc[0] if "crs" in X and X["crs"].notna().any() else None
        return x[ok], y[ok], w[ok], crs
    raise InputError("clustering needs points (x, y in metres) or UnitCounts")


def _hull(x: FloatArray, y: FloatArray) -> list[list[float]]:
    pts = np.unique(np.column_stack([x, y]), axis=0)
    if len(pts) >= 3:
        from scipy.spatial import ConvexHull, QhullError

        try:
            pts = pts[ConvexHull(pts).vertices]
        except QhullError:  # collinear: keep the two ends
            pts = pts[[0, -1]]
    return [[float(a), float(b)] for a, b in pts]


def summarise_clusters(
    x: FloatArray, y: FloatArray, w: FloatArray, labels: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], pd.DataFrame]:
    """Relabel clusters by weighted size (0 = largest, noise stays -1) and summarise each."""
    ids = [c for c in np.unique(labels) if c >= 0]
    sizes = {c: float(w[labels == c].sum()) for c in ids}
    order = sorted(ids, key=lambda c: (-sizes[c], c))
    remap = {old: new for new, old in enumerate(order)}
    new = np.array([remap.get(int(c), -1) for c in labels], dtype=np.int64)
    rows = []
    for c in range(len(order)):
        m = new == c
        wx, wy, ww = x[m], y[m], w[m]
        mx, my = float(np.average(wx, weights=ww)), float(np.average(wy, weights=ww))
        sd = float(np.sqrt(np.average((wx - mx) ** 2 + (wy - my) ** 2, weights=ww)))
        rows.append({"cluster": c, "count": float(ww.sum()), "x": mx, "y": my, "radius_m": sd, "hull": _hull(wx, wy)})
    cols = ["cluster", "count", "x", "y", "radius_m", "hull"]
    return new, pd.DataFrame(rows, columns=cols)


def auto_min_samples(x: FloatArray, y: FloatArray, w: FloatArray, eps: float) -> tuple[int, str]:
    """DBSCAN ``min_samples`` such that, under complete spatial randomness, fewer than one core point is expected.

    With ``n`` incidents spread uniformly over their bounding box ``A``, the number of *other*
    incidents within ``eps`` of one is Poisson with mean ``λ = n π eps² / A``. The rule takes the
    smallest ``k`` with ``P(N ≥ k) ≤ 1/n`` (a Bonferroni bound over the ``n`` incidents) and
    ``min_samples = k + 1`` (scikit-learn counts the point itself), at least 5. Clusters are then
    places far denser than the city average, not the random crowding of a busy city.
    """
    from scipy import stats

    n = float(w.sum())
    area = max(float(np.ptp(x)) * float(np.ptp(y)), np.pi * eps**2)
    lam = n * np.pi * eps**2 / area
    k = int(stats.poisson.ppf(1.0 - 1.0 / max(n, 2.0), lam)) + 1
    return max(5, k + 1), f"CSR bound: under randomness < 1 core point expected (mean within eps {lam:.1f})"


class PointClusters(BaseEstimator):  # type: ignore[misc]  # scikit-learn ships no type hints
    """DBSCAN, HDBSCAN or K-Means clusters of incidents in metres.

    Parameters
    ----------
    method : {"dbscan", "hdbscan", "kmeans"}
        The algorithm.
    eps : float
        DBSCAN neighbourhood radius in metres.
    min_samples : int, optional
        DBSCAN: incidents (weights) within ``eps`` that make a core point; by default
        :func:`auto_min_samples` (denser than 99% of places would be under complete spatial
        randomness).
    min_cluster_size : int
        HDBSCAN: smallest cluster.
    n_clusters : int
        K-Means: number of clusters.
    crs : str, optional
        The metric CRS (taken from the input when it carries one).
    random_state : int, optional
        K-Means seed.

    Attributes
    ----------
    labels_ : ndarray of int
        Cluster per input location (0 = largest cluster, -1 = noise).
    result_ : ClusterResult
    """

    def __init__(
        self,
        *,
        method: ClusterMethod = "dbscan",
        eps: float = 200.0,
        min_samples: int | None = None,
        min_cluster_size: int = 25,
        n_clusters: int = 8,
        crs: str | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.method = method
        self.eps = eps
        self.min_samples = min_samples
        self.min_cluster_size = min_cluster_size
        self.n_clusters = n_clusters
        self.crs = crs
        self.random_state = random_state

    def fit(self, X: UnitCounts | pd.DataFrame, y: None = None) -> PointClusters:
        """Cluster the locations of ``X`` (points, or weighted cell centres)."""
        from sklearn.cluster import DBSCAN, HDBSCAN, KMeans

        x, yy, w, crs = _points(X)
        if x.size == 0:
            raise InputError("no located incidents to cluster")
        pts = np.column_stack([x, yy])
        params: dict[str, Any] = {"algorithm": self.method, "_weights_total": float(w.sum())}
        if self.method == "dbscan":
            ms, rule = (
                (self.min_samples, "given") if self.min_samples is not None else auto_min_samples(x, yy, w, self.eps)
            )
            raw = DBSCAN(eps=self.eps, min_samples=ms).fit(pts, sample_weight=w).labels_
            params.update(eps_m=self.eps, min_samples=ms, min_samples_rule=rule)
        elif self.method == "kmeans":
            k = min(self.n_clusters, x.size)
            raw = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(pts, sample_weight=w).labels_
            params.update(n_clusters=k, random_state=self.random_state)
        elif self.method == "hdbscan":
            reps = np.rint(w).astype(np.int64)
            if (np.abs(w - reps) > 1e-9).any():
                raise InputError("HDBSCAN takes unweighted points or integer counts")
            expanded = np.repeat(pts, reps, axis=0)
            if len(expanded) < 2:
                raise InputError("HDBSCAN needs at least two incidents")
            lab = HDBSCAN(min_cluster_size=min(self.min_cluster_size, len(expanded)), copy=True).fit(expanded).labels_
            # a location takes the label of its (identical) copies
            first = np.concatenate([[0], np.cumsum(reps)[:-1]])
            raw = np.where(reps > 0, lab[np.minimum(first, len(lab) - 1)], -1)
            params.update(min_cluster_size=self.min_cluster_size)
        else:
            raise InputError(f"unknown method {self.method!r}: use dbscan, hdbscan or kmeans")
        labels, table = summarise_clusters(x, yy, w, np.asarray(raw, np.int64))
        self.labels_ = labels
        self.result_ = ClusterResult(labels, table, self.crs or crs or "EPSG:3857", params, self.method)
        return self

    def result(self) -> ClusterResult:
        """The fitted :class:`ClusterResult`."""
        if not hasattr(self, "result_"):
            raise NotFittedError("PointClusters is not fitted: call fit(points) first")
        return self.result_
