"""Every analysis estimator honours the scikit-learn contract (ARCHITECTURE §2)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from crimelens.analysis import (
    EmergingHotSpots,
    GetisOrd,
    KernelDensity,
    KnoxTest,
    LocalMoran,
    PointClusters,
    count_incidents,
    grid_counts,
    space_time_cube,
)
from crimelens.exceptions import NotFittedError

from .conftest import CRS, Cluster


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    from .conftest import START, canonical, make_points

    rng = np.random.default_rng(0)
    x, y = make_points(rng, background=800, clusters=[Cluster(1500, 1500, 150, 200)])
    t = START + pd.to_timedelta(rng.uniform(0, 200 * 86400, len(x)), unit="s")
    return canonical(x, y, pd.DatetimeIndex(t).floor("min"))


def _input(kind: str, frame: pd.DataFrame) -> Any:
    if kind == "cells":
        return grid_counts(count_incidents(frame, ["cell:250"]), 250, CRS)
    if kind == "cube":
        return space_time_cube(count_incidents(frame, ["cell:500", "month"]), 500, CRS, period="month")
    return frame


CASES: list[tuple[Callable[[], Any], str, Callable[[Any], Any]]] = [
    (lambda: GetisOrd(inference="permutation", n_permutations=99, random_state=3), "cells", lambda e: e.p_),
    (lambda: LocalMoran(inference="permutation", n_permutations=99, random_state=3), "cells", lambda e: e.p_),
    (lambda: KernelDensity(bandwidth=300.0), "cells", lambda e: e.result_.values),
    (lambda: PointClusters(method="kmeans", n_clusters=4, random_state=3), "points", lambda e: e.labels_),
    (lambda: PointClusters(method="dbscan", eps=150), "points", lambda e: e.labels_),
    (lambda: KnoxTest(n_permutations=19, random_state=3), "points", lambda e: e.result_.p.to_numpy()),
    (lambda: EmergingHotSpots(distance_band=750.0), "cube", lambda e: e.labels_),
]


@pytest.mark.parametrize(("make", "kind", "output"), CASES)
def test_estimator_contract(
    frame: pd.DataFrame, make: Callable[[], Any], kind: str, output: Callable[[Any], Any]
) -> None:
    est = make()
    with pytest.raises(NotFittedError):
        est.result()
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    data = _input(kind, frame)
    snapshot = frame.copy()
    assert est.fit(data) is est
    pd.testing.assert_frame_equal(frame, snapshot)  # no mutation of the input
    again = clone(est).fit(_input(kind, frame))
    np.testing.assert_array_equal(output(est), output(again))  # deterministic under random_state
    assert est.result() is est.result_
    assert est.result_.parameters
