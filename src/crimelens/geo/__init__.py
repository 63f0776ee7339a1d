"""Geography: local metric projections, square grids, H3 cells."""

from crimelens.geo.crs import local_utm, to_local, to_wgs84
from crimelens.geo.grid import SquareGrid

__all__ = ["SquareGrid", "local_utm", "to_local", "to_wgs84"]
