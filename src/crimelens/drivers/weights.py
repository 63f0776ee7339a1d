"""Spatial weights for area models: ``queen``, ``rook``, ``knn:K`` or ``distance:M`` (libpysal).

Contiguity weights come from shared boundary points (queen) or edges (rook); ``knn:K`` links each
area to its K nearest centroids; ``distance:M`` links centroids within M metres (layer units when
the layer has no CRS). Weights are row-standardised, as spreg and esda expect.

**Islands** (areas with no neighbour) make the spatial lag undefined. They are handled by a
documented automatic fix: each island is linked to its nearest area by centroid
(``libpysal.weights.attach_islands``), and the fix is reported in :attr:`SpatialWeights.notes`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import geopandas as gpd
import libpysal

from crimelens.exceptions import InputError


@dataclass(slots=True)
class SpatialWeights:
    """Row-standardised weights with what was done to build them."""

    w: libpysal.weights.W
    spec: str
    islands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, object]:
        """JSON-ready description (spec, mean neighbours, islands fixed)."""
        return {"spec": self.spec, "n": int(self.w.n), "mean_neighbours": float(self.w.mean_neighbors),
                "islands_attached": list(self.islands), "notes": list(self.notes)}


def parse_spec(spec: str) -> tuple[str, float]:
    """Split ``knn:5`` into ``("knn", 5.0)``; validate the kind and the number."""
    kind, _, arg = spec.strip().lower().partition(":")
    if kind in ("queen", "rook"):
        if arg:
            raise InputError(f"--weights {spec!r}: {kind} takes no argument")
        return kind, 0.0
    if kind in ("knn", "distance"):
        try:
            value = float(arg)
        except ValueError:
            raise InputError(f"--weights {spec!r}: expected {kind}:NUMBER") from None
        if value <= 0 or (kind == "knn" and not value.is_integer()):
            what = "integer" if kind == "knn" else "distance"
            raise InputError(f"--weights {spec!r}: {kind} needs a positive {what}")
        return kind, value
    raise InputError(f"--weights {spec!r}: expected queen, rook, knn:K or distance:M")


def build_weights(frame: gpd.GeoDataFrame, spec: str = "queen", ids: list[str] | None = None) -> SpatialWeights:
    """Build row-standardised weights for ``frame`` (metric CRS for knn/distance) from ``spec``."""
    kind, value = parse_spec(spec)
    n = len(frame)
    if n < 3:
        raise InputError(f"spatial weights need at least 3 areas, the layer has {n}")
    names = ids if ids is not None else [str(i) for i in range(n)]
    frame = frame.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libpysal warns about islands; they are reported below
        if kind == "queen":
            w = libpysal.weights.Queen.from_dataframe(frame, use_index=False)
        elif kind == "rook":
            w = libpysal.weights.Rook.from_dataframe(frame, use_index=False)
        elif kind == "knn":
            k = int(value)
            if k >= n:
                raise InputError(f"--weights knn:{k}: needs fewer neighbours than areas ({n})")
            w = libpysal.weights.KNN.from_dataframe(frame.set_geometry(frame.geometry.centroid), k=k)
        else:
            w = libpysal.weights.DistanceBand.from_dataframe(
                frame.set_geometry(frame.geometry.centroid), threshold=value, binary=True, silence_warnings=True)
    notes: list[str] = []
    islands = [names[i] for i in w.islands]
    if islands:
        if len(islands) == n:
            raise InputError(f"--weights {spec}: no area has a neighbour; try knn:K or a larger distance")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = libpysal.weights.attach_islands(
                w, libpysal.weights.KNN.from_dataframe(frame.set_geometry(frame.geometry.centroid), k=1))
        notes.append(f"{len(islands)} island(s) with no neighbour under {spec} were linked to their nearest "
                     f"area: {', '.join(islands[:10])}")
    w.id_order = list(range(n))  # ids are the row positions of frame (esda's spatial EB checks the order)
    w.transform = "r"
    return SpatialWeights(w=w, spec=spec, islands=islands, notes=notes)
