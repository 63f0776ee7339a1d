"""Map classes, their legend labels and colours, in the conventions analysts already know.

Hot spot classes use ArcGIS's Hot Spot Analysis colours (ARCHITECTURE §7); Local Moran classes
the Cluster and Outlier Analysis palette; emerging hot spot patterns a red (hot) and blue (cold)
ramp ordered from the most to the least urgent pattern, as in ArcGIS's Emerging Hot Spot Analysis.
Legends read in words, never in codes.
"""

from __future__ import annotations

from typing import Final

#: Gi* classes, hottest first.
CLASS_ORDER: Final = ("hot_99", "hot_95", "hot_90", "not_significant", "cold_90", "cold_95", "cold_99")

#: ArcGIS hot spot colours per class.
CLASS_COLOURS: Final[dict[str, str]] = {
    "hot_99": "#D62F27",
    "hot_95": "#ED7551",
    "hot_90": "#FAB984",
    "not_significant": "#F7F7F2",
    "cold_90": "#C0CCBE",
    "cold_95": "#849EBA",
    "cold_99": "#4575B5",
}

#: Legend labels per class.
CLASS_LABELS: Final[dict[str, str]] = {
    "hot_99": "Hot spot, 99% confidence",
    "hot_95": "Hot spot, 95% confidence",
    "hot_90": "Hot spot, 90% confidence",
    "not_significant": "Not significant",
    "cold_90": "Cold spot, 90% confidence",
    "cold_95": "Cold spot, 95% confidence",
    "cold_99": "Cold spot, 99% confidence",
}

#: Local Moran classes.
LISA_ORDER: Final = ("HH", "HL", "LH", "LL", "not_significant")
LISA_COLOURS: Final[dict[str, str]] = {
    "HH": "#D62F27",
    "HL": "#ED7551",
    "LH": "#849EBA",
    "LL": "#4575B5",
    "not_significant": "#F7F7F2",
}
LISA_LABELS: Final[dict[str, str]] = {
    "HH": "High-High cluster",
    "HL": "High-Low outlier",
    "LH": "Low-High outlier",
    "LL": "Low-Low cluster",
    "not_significant": "Not significant",
}

#: Emerging hot spot patterns, in legend order.
EMERGING_PATTERNS: Final = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
)
EMERGING_ORDER: Final = (
    *(f"{p}_hot_spot" for p in EMERGING_PATTERNS),
    "no_pattern",
    *(f"{p}_cold_spot" for p in EMERGING_PATTERNS),
)
_HOT_RAMP = ("#67000D", "#A50F15", "#CB181D", "#EF3B2C", "#FB6A4A", "#FC9272", "#FCBBA1", "#FEE0D2")
_COLD_RAMP = ("#08306B", "#08519C", "#2171B5", "#4292C6", "#6BAED6", "#9ECAE1", "#C6DBEF", "#DEEBF7")
EMERGING_COLOURS: Final[dict[str, str]] = {
    **{f"{p}_hot_spot": c for p, c in zip(EMERGING_PATTERNS, _HOT_RAMP, strict=True)},
    "no_pattern": "#F7F7F2",
    **{f"{p}_cold_spot": c for p, c in zip(EMERGING_PATTERNS, _COLD_RAMP, strict=True)},
}
EMERGING_LABELS: Final[dict[str, str]] = {
    k: ("No pattern detected" if k == "no_pattern" else k.replace("_", " ").capitalize()) for k in EMERGING_ORDER
}


def palette_for(method: str) -> tuple[tuple[str, ...], dict[str, str], dict[str, str]]:
    """``(order, colours, labels)`` of the classes a method produces."""
    if method == "lisa":
        return LISA_ORDER, LISA_COLOURS, LISA_LABELS
    if method == "emerging":
        return EMERGING_ORDER, EMERGING_COLOURS, EMERGING_LABELS
    return CLASS_ORDER, CLASS_COLOURS, CLASS_LABELS
