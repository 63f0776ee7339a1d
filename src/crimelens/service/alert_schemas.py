"""Request and response models of ``/alerts`` and ``/alert-rules`` (requests forbid unknown fields)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crimelens.service.schemas import IncidentOut, Strict

_ALERT_EXAMPLE: dict[str, Any] = {
    "alert_id": "3f9c2a7d81b04e55", "kind": "spike", "method": "nb", "rule": "", "area_level": "district",
    "area": "011", "category": "burglary", "window_start": "2024-06-24T00:00:00-05:00",
    "window_end": "2024-07-01T00:00:00-05:00", "observed": 24.0, "expected": 3.1, "lower": 0.0, "upper": 7.0,
    "p_value": 1.2e-9, "q_value": 4.0e-8, "ratio": 7.7, "severity": "high", "status": "open",
    "incident_ids": ["chicago:90000001"], "scores": {"ewma": 5.2}, "created_at": "2024-07-01T06:15:00+00:00",
    "timezone": "America/Chicago", "key": "spike|district|011|burglary",
    "headline": "Burglary in district 011: 24 vs 3.1 expected"}


class AlertOut(BaseModel):
    """One alert: where, what, the window, observed vs expected, significance, status."""

    alert_id: str
    kind: str = Field(description="spike, series, watch or threshold")
    method: str
    rule: str
    area_level: str
    area: str
    category: str
    window_start: str
    window_end: str
    observed: float | None
    expected: float | None
    lower: float | None
    upper: float | None
    p_value: float | None
    q_value: float | None
    ratio: float | None
    severity: str
    status: str = Field(description="open, acknowledged or resolved")
    incident_ids: list[str] = Field(description="``source:incident_id`` of the incidents behind it")
    scores: dict[str, float | None]
    created_at: str | None
    timezone: str
    key: str
    headline: str
    model_config = ConfigDict(extra="ignore", json_schema_extra={"examples": [_ALERT_EXAMPLE]})


class AlertPage(BaseModel):
    """A page of alerts, newest first."""

    items: list[AlertOut]
    total: int = Field(description="alerts matching the filters")
    limit: int
    offset: int


class AlertDetailOut(AlertOut):
    """An alert with the incidents behind it (fields as the caller's role may read them)."""

    incidents: list[IncidentOut]
    incidents_shown: int


class AckIn(Strict):
    """Acknowledge: someone is looking at it."""

    note: str | None = Field(default=None, max_length=2000, examples=["district 011 informed"])


class ResolveIn(Strict):
    """Resolve with feedback: was it a real rise (``true``) or a false alarm (``false``)?"""

    label: Literal["true", "false"] = Field(description="true: a real problem; false: a false alarm")
    note: str | None = Field(default=None, max_length=2000)
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"label": "true", "note": "confirmed: burglary series on W Madison"}]})


class RuleBookIn(Strict):
    """A rule book: rules (series, watch, threshold), subscriptions and the cool-down."""

    rules: list[dict[str, Any]] = Field(default_factory=list, max_length=500)
    subscriptions: list[dict[str, Any]] = Field(default_factory=list, max_length=500)
    cooldown_hours: float = Field(default=72.0, ge=0, le=24 * 365)
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "rules": [{"name": "burglary series", "type": "series", "categories": ["burglary"], "min_count": 3,
                   "radius_m": 400, "days": 7},
                  {"name": "any homicide", "type": "watch", "categories": ["homicide"]}],
        "subscriptions": [{"name": "district 011", "email": ["d011@example.org"], "areas": ["011"],
                           "min_severity": "medium"}],
        "cooldown_hours": 72}]})


class RuleBookOut(BaseModel):
    """The rule book in use and where it came from (``api``, ``file`` or ``none``)."""

    rules: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    cooldown_hours: float
    source: Literal["api", "file", "none"]


class PrecisionRowOut(BaseModel):
    """Precision of the alerts raised in one period, from true/false-alarm feedback."""

    period: str
    group: str | None = None
    labelled: int
    true: int
    false: int
    precision: float | None
    lower: float | None = Field(description="95 % Wilson interval")
    upper: float | None
    cumulative_precision: float | None


class PrecisionOut(BaseModel):
    """Precision over time and overall."""

    period: Literal["week", "month", "quarter", "year"]
    by: str | None
    rows: list[PrecisionRowOut]
    labelled: int
    precision: float | None
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "period": "month", "by": None, "labelled": 4, "precision": 0.75, "rows": [
            {"period": "2024-06-01T00:00:00", "group": None, "labelled": 4, "true": 3, "false": 1,
             "precision": 0.75, "lower": 0.3, "upper": 0.95, "cumulative_precision": 0.75}]}]})


class ScanIn(Strict):
    """Scan now: windows ending at ``end`` (default: after the last day with data)."""

    end: date | None = Field(default=None, description="local midnight that ends the windows")
    categories: list[str] = Field(default_factory=list, max_length=50, examples=[["burglary"]])


class ScanOut(BaseModel):
    """What a scan found (new and updated alerts; repeats within the cool-down are held back)."""

    new: int
    updated: int
    suppressed: int
    seconds: float
    alerts: list[AlertOut]
