"""The :class:`Alert` record every detector and rule produces, and its severity scale.

An alert is plain data: what was found (a spike, a near-repeat series, a watched offence, a
threshold crossed), where (``area_level`` / ``area``), which offence (``category``), over which
window, the evidence (observed, expected, prediction interval, p-value and FDR q-value, control
chart statistics) and the incidents behind it. Detectors never deliver or store alerts; adapters
do (``crimelens.notify``).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final, Literal

import pandas as pd

AlertKind = Literal["spike", "series", "watch", "threshold"]
Severity = Literal["low", "medium", "high", "critical"]
Status = Literal["open", "acknowledged", "resolved"]

SEVERITIES: Final[tuple[Severity, ...]] = ("low", "medium", "high", "critical")
KINDS: Final[tuple[AlertKind, ...]] = ("spike", "series", "watch", "threshold")
STATUSES: Final[tuple[Status, ...]] = ("open", "acknowledged", "resolved")


def severity_rank(severity: str) -> int:
    """0 for ``low`` ... 3 for ``critical``; unknown names rank below ``low``."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1  # type: ignore[arg-type]


def spike_severity(p_value: float, observed: float, expected: float) -> Severity:
    """Severity of a significant spike from its surprise and its size.

    ``critical``: p < 1e-6 and at least three times the expected count; ``high``: p < 1e-4 and at
    least twice; ``medium``: p < 1e-2 or at least twice; ``low`` otherwise. Both the evidence and
    the size must be large for the top grades, so a huge area with a small relative rise, or a
    tiny count tripled, does not reach them.
    """
    ratio = observed / expected if expected > 0 else math.inf
    if p_value < 1e-6 and ratio >= 3:
        return "critical"
    if p_value < 1e-4 and ratio >= 2:
        return "high"
    if p_value < 1e-2 or ratio >= 2:
        return "medium"
    return "low"


@dataclass(slots=True)
class Alert:
    """One alert.

    Parameters
    ----------
    kind
        ``spike`` (statistical rise), ``series`` (near-repeat series rule), ``watch`` (any
        incident of a watched category) or ``threshold`` (a count threshold in an area).
    area_level, area
        The area column (``district``, ``beat``, ``city``...) and its value.
    category
        The canonical category (or group) the alert is about.
    window_start, window_end
        The window examined, UTC, start inclusive and end exclusive.
    observed, expected
        Incidents in the window and the count expected from history (``nan`` for rules with no
        statistical model).
    lower, upper
        Bounds of the prediction interval of the window count (``nan`` when not applicable).
    p_value, q_value
        One-sided p-value of the window count and its Benjamini–Hochberg adjusted value.
    severity
        ``low`` < ``medium`` < ``high`` < ``critical``.
    method
        The detector or rule that raised it (``nb``, ``ewma``, ``cusum``, ``stl`` or a rule name).
    incident_ids
        ``source:incident_id`` of the incidents behind the alert.
    scores
        Further evidence: EWMA, CUSUM, STL residual score, dispersion, parameters.
    timezone
        The zone whose calendar days the window follows (times are held in UTC and shown in it).
    """

    kind: AlertKind
    area_level: str
    area: str
    category: str
    window_start: pd.Timestamp
    window_end: pd.Timestamp
    observed: float
    expected: float = math.nan
    lower: float = math.nan
    upper: float = math.nan
    p_value: float = math.nan
    q_value: float = math.nan
    severity: Severity = "medium"
    method: str = "nb"
    rule: str = ""
    incident_ids: list[str] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    created_at: pd.Timestamp | None = None
    alert_id: str = ""
    status: Status = "open"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        self.window_start = _utc(self.window_start)
        self.window_end = _utc(self.window_end)
        if self.created_at is not None:
            self.created_at = _utc(self.created_at)
        if not self.alert_id:
            self.alert_id = self.fingerprint()

    @property
    def key(self) -> str:
        """The de-duplication key: same kind, rule, area and category."""
        return "|".join((self.kind, self.rule or self.method, self.area_level, self.area, self.category))

    def fingerprint(self) -> str:
        """A stable id from the key and the window (the same finding twice gets the same id)."""
        text = f"{self.key}|{self.window_start.isoformat()}|{self.window_end.isoformat()}"
        if self.kind in ("watch", "series") and self.incident_ids:
            text += "|" + ",".join(sorted(self.incident_ids))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @property
    def ratio(self) -> float:
        """Observed / expected (``inf`` when nothing was expected, ``nan`` without a model)."""
        if math.isnan(self.expected):
            return math.nan
        return self.observed / self.expected if self.expected > 0 else math.inf

    def headline(self) -> str:
        """A one-line human summary."""
        where = f"{self.area_level} {self.area}" if self.area_level != "city" else "city-wide"
        span = self.span()
        if self.kind == "spike":
            return (f"[{self.severity}] {self.category} spike in {where}: {self.observed:.0f} vs "
                    f"{self.expected:.1f} expected ({span}, p={self.p_value:.2g})")
        if self.kind == "series":
            return f"[{self.severity}] {self.category} series in {where}: {self.observed:.0f} incidents ({span})"
        if self.kind == "watch":
            return f"[{self.severity}] {self.category} in {where} ({self.rule})"
        return (f"[{self.severity}] {self.category} in {where}: {self.observed:.0f} incidents "
                f"reached the threshold of rule {self.rule!r} ({span})")

    def span(self) -> str:
        """The window's first and last local day, ``2024-03-04–2024-03-10``."""
        first = self.window_start.tz_convert(self.timezone)
        last = (self.window_end - pd.Timedelta(seconds=1)).tz_convert(self.timezone)
        return f"{first:%Y-%m-%d}–{last:%Y-%m-%d}"

    def with_updates(self, **changes: Any) -> Alert:
        """A copy with some fields changed (the id is kept)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps as ISO strings, non-finite numbers as ``None``)."""
        d = asdict(self)
        d["window_start"] = self.window_start.tz_convert(self.timezone).isoformat()
        d["window_end"] = self.window_end.tz_convert(self.timezone).isoformat()
        d["created_at"] = self.created_at.isoformat() if self.created_at is not None else None
        for k in ("observed", "expected", "lower", "upper", "p_value", "q_value"):
            d[k] = _finite(d[k])
        d["scores"] = {k: _finite(v) for k, v in self.scores.items()}
        d["ratio"] = _finite(self.ratio)
        d["key"] = self.key
        d["headline"] = self.headline()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """Rebuild an alert from :meth:`to_dict` output (extra keys are ignored)."""
        names = set(cls.__dataclass_fields__)
        kw = {k: v for k, v in data.items() if k in names}
        for k in ("observed", "expected", "lower", "upper", "p_value", "q_value"):
            if k in kw:
                kw[k] = math.nan if kw[k] is None else float(kw[k])
        for k in ("window_start", "window_end"):
            kw[k] = pd.Timestamp(kw[k])
        if kw.get("created_at") is not None:
            kw["created_at"] = pd.Timestamp(kw["created_at"])
        kw["scores"] = {k: math.nan if v is None else float(v) for k, v in (kw.get("scores") or {}).items()}
        kw["incident_ids"] = list(kw.get("incident_ids") or [])
        return cls(**kw)


def _utc(ts: Any) -> pd.Timestamp:
    t = pd.Timestamp(ts)
    return t.tz_convert("UTC") if t.tzinfo is not None else t.tz_localize("UTC")


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
