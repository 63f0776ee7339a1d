"""Kernel density: integrates to the count, matches direct summation, peaks on the planted cluster."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis import KernelDensity, bandwidth_rule, count_incidents, grid_counts
from crimelens.analysis.kde import kde_direct, kernel_weights
from crimelens.exceptions import InputError

from .conftest import CRS, Cluster


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
@pytest.mark.parametrize("bandwidth", [None, 30.0, 400.0])
def test_surface_integrates_to_the_incident_count(
    city: Callable[..., pd.DataFrame], kernel: str, bandwidth: float | None
) -> None:
    df = city(2, background=700, clusters=[Cluster(1000, 4000, 100, 150)])
    units = grid_counts(count_incidents(df, ["cell:50"]), 50, CRS)
    surf = KernelDensity(kernel=kernel, bandwidth=bandwidth).fit(units).result_  # type: ignore[arg-type]
    assert surf.values.sum() == pytest.approx(len(df), rel=1e-9)
    assert (surf.values >= 0).all()
    km2 = surf.grid.cell_area / 1e6
    assert (surf.per_km2 * km2).sum() == pytest.approx(len(df), rel=1e-9)
    assert surf.to_frame()["count"].sum() == pytest.approx(len(df), rel=1e-9)


@pytest.mark.parametrize("kernel", ["quartic", "gaussian"])
def test_binned_fft_matches_direct_summation(kernel: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(5000, 600, 250)
    y = rng.normal(5000, 400, 250)
    est = KernelDensity(kernel=kernel, bandwidth=500.0, cell_size=50.0, crs=CRS)  # type: ignore[arg-type]
    surf = est.fit(pd.DataFrame({"x": x, "y": y})).result_
    direct = kde_direct(x, y, surf.grid, kernel, 500.0)  # type: ignore[arg-type]
    # binning moves points by at most half a cell diagonal (35 m): small against a 500 m bandwidth
    err = np.abs(surf.values - direct)
    assert err.max() <= 0.03 * direct.max()
    assert err.mean() <= 0.003 * direct.max()
    assert direct.sum() == pytest.approx(surf.values.sum(), rel=1e-3)


def test_peak_is_on_the_planted_cluster(city: Callable[..., pd.DataFrame]) -> None:
    df = city(3, background=1000, clusters=[Cluster(3500, 1200, 120, 300)])
    surf = KernelDensity(cell_size=50, crs=CRS).fit(df[["x", "y"]]).result_
    peak = int(np.argmax(surf.values))
    px, py = surf.grid.centres(np.array([peak]))
    assert np.hypot(px[0] - (df["x"].min() + 3500), py[0] - (df["y"].min() + 1200)) < 200


def test_bandwidth_rules() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1000, 10_000), rng.normal(0, 1000, 10_000)
    scott = bandwidth_rule(x, y, None, "scott")
    assert scott == pytest.approx(1000 * 10_000 ** (-1 / 6), rel=0.05)
    arc = bandwidth_rule(x, y, None, "arcgis")
    sd = np.sqrt(2) * 1000  # standard distance of an isotropic normal
    assert arc == pytest.approx(0.9 * min(sd, np.sqrt(1 / np.log(2)) * 1177.4) * 10_000**-0.2, rel=0.05)
    # weights behave like repeated points
    w = rng.integers(1, 4, 500).astype(float)
    xs, ys = rng.normal(0, 300, 500), rng.normal(0, 300, 500)
    assert bandwidth_rule(xs, ys, w, "scott") == pytest.approx(
        bandwidth_rule(np.repeat(xs, w.astype(int)), np.repeat(ys, w.astype(int)), None, "scott")
    )
    with pytest.raises(InputError):
        bandwidth_rule(x, y, None, "plug-in")


def test_kernel_weights_sum_to_one_and_degenerate_bandwidth() -> None:
    for k in ("quartic", "gaussian"):
        assert kernel_weights(k, 333.0, 50.0).sum() == pytest.approx(1.0)  # type: ignore[arg-type]
    tiny = kernel_weights("quartic", 10.0, 50.0)
    assert tiny.shape == (1, 1) and tiny[0, 0] == 1.0
