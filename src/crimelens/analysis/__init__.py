"""Spatial and temporal crime analysis: trends, CompStat, KDE, Gi*, Local Moran, clusters,
near-repeat and emerging hot spots.

Every function takes counts (a store ``GROUP BY`` or :func:`count_incidents` on a frame) or, for
point methods, located incidents; estimators follow scikit-learn (``GetisOrd(...).fit(units)``)
and results are typed objects with ``to_frame()`` / ``to_geojson()`` and :func:`save`.
"""

from crimelens.analysis.aggregate import count_incidents
from crimelens.analysis.autocorrelation import GlobalMoran, global_moran, incremental_band
from crimelens.analysis.centrography import (
    DirectionalDistribution,
    NearestNeighbourIndex,
    clark_evans,
    directional_distribution,
    standard_ellipse,
)
from crimelens.analysis.clusters import PointClusters
from crimelens.analysis.compstat import CompStatResult, compstat, compstat_windows
from crimelens.analysis.emerging import EmergingHotSpots, SpaceTimeCube, mann_kendall, space_time_cube
from crimelens.analysis.export import save
from crimelens.analysis.gistar import GetisOrd, gi_star_z, gistar
from crimelens.analysis.kde import KernelDensity, bandwidth_rule
from crimelens.analysis.lisa import LocalMoran
from crimelens.analysis.nearrepeat import KnoxTest, NearRepeatResult
from crimelens.analysis.results import (
    ClusterResult,
    DataQuality,
    DensitySurface,
    EmergingResult,
    HotspotResult,
    LocalMoranResult,
    UnitResult,
)
from crimelens.analysis.significance import benjamini_hochberg, confidence_bins
from crimelens.analysis.temporal import (
    MatrixResult,
    TimePrecisionError,
    TrendResult,
    hour_weekday,
    month_year,
    stl_decompose,
    time_series,
)
from crimelens.analysis.units import UnitCounts, area_counts, grid_counts, h3_counts, polygon_counts

__all__ = [
    "ClusterResult",
    "CompStatResult",
    "DataQuality",
    "DensitySurface",
    "DirectionalDistribution",
    "EmergingHotSpots",
    "EmergingResult",
    "GetisOrd",
    "GlobalMoran",
    "HotspotResult",
    "KernelDensity",
    "KnoxTest",
    "LocalMoran",
    "LocalMoranResult",
    "MatrixResult",
    "NearRepeatResult",
    "NearestNeighbourIndex",
    "PointClusters",
    "SpaceTimeCube",
    "TimePrecisionError",
    "TrendResult",
    "UnitCounts",
    "UnitResult",
    "area_counts",
    "bandwidth_rule",
    "benjamini_hochberg",
    "clark_evans",
    "compstat",
    "compstat_windows",
    "confidence_bins",
    "count_incidents",
    "directional_distribution",
    "gi_star_z",
    "gistar",
    "global_moran",
    "grid_counts",
    "h3_counts",
    "hour_weekday",
    "incremental_band",
    "mann_kendall",
    "month_year",
    "polygon_counts",
    "save",
    "space_time_cube",
    "standard_ellipse",
    "stl_decompose",
    "time_series",
]
