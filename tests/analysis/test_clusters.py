"""Point clusters in metres and centrography (Clark-Evans, standard deviational ellipse)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crimelens.analysis import (
    PointClusters,
    clark_evans,
    count_incidents,
    directional_distribution,
    grid_counts,
    standard_ellipse,
)
from crimelens.exceptions import InputError

from .conftest import CRS, Cluster

PLANTED = [Cluster(1000, 1000, 60, 150), Cluster(4000, 3500, 90, 250), Cluster(1500, 4200, 40, 80)]


@pytest.mark.parametrize("method", ["dbscan", "hdbscan"])
def test_density_clusters_find_the_planted_clusters(city: Callable[..., pd.DataFrame], method: str) -> None:
    df = city(5, background=800, clusters=PLANTED)
    est = PointClusters(method=method, eps=150, min_cluster_size=40).fit(df)  # type: ignore[arg-type]
    table = est.result_.clusters
    ox, oy = df["x"].min(), df["y"].min()
    from matplotlib.path import Path

    for c in PLANTED:
        holders = [
            r
            for r in table.to_dict("records")
            if len(r["hull"]) >= 3 and Path(np.asarray(r["hull"])).contains_point((ox + c.x, oy + c.y))
        ]
        assert holders, f"no cluster covers the planted centre {c}"
        assert max(r["count"] for r in holders) >= 0.8 * c.n
    assert table["count"].is_monotonic_decreasing  # cluster 0 is the largest
    assert (est.labels_ >= -1).all() and len(est.labels_) == len(df)


def test_dbscan_on_weighted_cells_equals_dbscan_on_points_at_cell_centres(
    city: Callable[..., pd.DataFrame],
) -> None:
    df = city(6, background=600, clusters=PLANTED[:2])
    units = grid_counts(count_incidents(df, ["cell:10"]), 10, CRS)
    weighted = PointClusters(eps=120, min_samples=30).fit(units).result_.clusters
    cell = units.grid.cell_of(df["x"].to_numpy(), df["y"].to_numpy())  # type: ignore[union-attr]
    cx, cy = units.grid.centres(cell)  # type: ignore[union-attr]
    points = PointClusters(eps=120, min_samples=30).fit(pd.DataFrame({"x": cx, "y": cy})).result_.clusters
    np.testing.assert_allclose(weighted["count"], points["count"])
    np.testing.assert_allclose(weighted[["x", "y"]], points[["x", "y"]])


def test_auto_min_samples_ignores_a_uniform_city(city: Callable[..., pd.DataFrame]) -> None:
    uniform = city(7, background=3000)
    res = PointClusters(eps=150).fit(uniform).result_
    assert res.summary()["clustered_share"] < 0.05
    assert "CSR" in res.parameters["min_samples_rule"]


def test_kmeans_partitions_everything(city: Callable[..., pd.DataFrame]) -> None:
    df = city(8, background=500)
    est = PointClusters(method="kmeans", n_clusters=5, random_state=0).fit(df)
    assert set(est.labels_) == set(range(5))
    assert est.result_.clusters["count"].sum() == len(df)


def test_clark_evans_random_and_clustered() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 5000, 2000), rng.uniform(0, 5000, 2000)
    rand = clark_evans(x, y, area=5000.0**2)
    assert pytest.approx(1.0, abs=0.06) == rand.R
    corrected = clark_evans(x, y, area="bbox", edge_correction=True)
    assert abs(corrected.z) < 3 and corrected.pattern == "random"
    cx, cy = rng.normal(2500, 200, 2000), rng.normal(2500, 200, 2000)
    clus = clark_evans(cx, cy, area=5000.0**2)
    assert clus.R < 0.3 and clus.pattern == "clustered" and clus.p < 1e-6
    grid = np.arange(0, 5000, 100.0)
    gx, gy = np.meshgrid(grid, grid)
    disp = clark_evans(gx.ravel(), gy.ravel(), area=5000.0**2)
    assert disp.R > 1.8 and disp.pattern == "dispersed"
    with pytest.raises(InputError):
        clark_evans(x[:2], y[:2])


def test_ellipse_axes_rotation_and_coverage() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    major, minor, angle = 800.0, 200.0, 30.0  # degrees clockwise from north
    u, v = rng.normal(0, major, n), rng.normal(0, minor, n)
    th = np.deg2rad(angle)
    x = 1000 + u * np.sin(th) + v * np.cos(th)
    y = 2000 + u * np.cos(th) - v * np.sin(th)
    e = standard_ellipse(x, y)
    assert e.x == pytest.approx(1000, abs=20) and e.y == pytest.approx(2000, abs=20)
    assert e.sigma_major == pytest.approx(major, rel=0.03) and e.sigma_minor == pytest.approx(minor, rel=0.03)
    assert e.rotation_deg == pytest.approx(angle, abs=1.5)
    # the one-standard-deviation ellipse (ArcGIS's √2 axes) holds 1 - e^-1 ≈ 63% of a bivariate normal
    from matplotlib.path import Path

    inside = Path(e.outline(256)).contains_points(np.column_stack([x, y])).mean()
    assert inside == pytest.approx(1 - np.exp(-1), abs=0.02)
    assert stats.chi2.cdf(2.0, 2) == pytest.approx(1 - np.exp(-1))


def test_directional_distribution_per_category(city: Callable[..., pd.DataFrame]) -> None:
    df = city(9, background=400)
    df.loc[df.index[:150], "category"] = "robbery"
    dd = directional_distribution(df)
    frame = dd.to_frame()
    assert set(frame["group"]) == {"burglary", "robbery"}
    assert frame.set_index("group").loc["robbery", "n"] == 150
    gj = dd.to_geojson()
    lon, lat = np.array(gj["features"][0]["geometry"]["coordinates"][0]).T
    assert (lon > -80).all() and (lon < -78).all() and (lat > 43).all() and (lat < 45).all()
