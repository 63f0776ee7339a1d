"""Request and response models of the REST API (request models forbid unknown fields: SEC-12)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RoleName = Literal["admin", "analyst", "viewer"]


class Strict(BaseModel):
    """A request body: unknown fields are refused with 422."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    """A generic error body."""

    detail: str = Field(examples=["not authenticated"])
    request_id: str | None = None


class LoginIn(Strict):
    """Credentials; ``totp`` only for accounts with a second factor."""

    username: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    totp: str | None = Field(default=None, max_length=10)
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"username": "analyst1", "password": "correct horse battery staple"}]})


class TokenOut(BaseModel):
    """A bearer token."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_idle_minutes: float
    role: RoleName
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"access_token": "q3Jx…", "token_type": "bearer", "expires_idle_minutes": 30, "role": "analyst"}]})


class MeOut(BaseModel):
    """The caller's own account."""

    username: str
    role: RoleName
    can_export: bool
    sources: list[str]
    totp_enabled: bool


class PasswordChangeIn(Strict):
    """Change one's own password (every session is revoked afterwards)."""

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class TotpBeginOut(BaseModel):
    """An otpauth:// URI to load into an authenticator app."""

    provisioning_uri: str


class TotpCodeIn(Strict):
    """A current TOTP code."""

    code: str = Field(min_length=6, max_length=10, examples=["123456"])


class UserIn(Strict):
    """A new account (admin only)."""

    username: str = Field(min_length=1, max_length=64, examples=["analyst1"])
    role: RoleName
    password: str = Field(max_length=1024)
    can_export: bool = False
    sources: list[str] = Field(default_factory=list, max_length=50)


class UserPatch(Strict):
    """Changes to an account (admin only)."""

    role: RoleName | None = None
    disabled: bool | None = None
    can_export: bool | None = None
    sources: list[str] | None = Field(default=None, max_length=50)


class PasswordResetIn(Strict):
    """A new password set by an admin."""

    new_password: str = Field(max_length=1024)


class UserOut(BaseModel):
    """An account as admins see it."""

    username: str
    role: RoleName
    disabled: bool
    can_export: bool
    sources: list[str]
    locked_until: str | None
    totp_enabled: bool
    created_at: str


class IncidentOut(BaseModel):
    """One incident; which fields are filled depends on the caller's role."""

    source: str
    incident_id: str
    occurred_at: str
    occurred_until: str | None = None
    time_precision: str | None = None
    reported_at: str | None = None
    offense: str | None = None
    offense_code: str | None = None
    category: str | None = None
    category_group: str | None = None
    crimes_against: str | None = None
    ucr_part1: str | None = None
    attempted: bool | None = None
    firearm: bool | None = None
    domestic: bool | None = None
    hate: bool | None = None
    residential: bool | None = None
    lat: float | None = None
    lon: float | None = None
    location_precision: str | None = None
    address: str | None = None
    beat: str | None = None
    district: str | None = None
    ward: str | None = None
    community_area: str | None = None
    neighbourhood: str | None = None
    lsoa: str | None = None
    premises: str | None = None
    arrest: bool | None = None
    outcome: str | None = None
    discovery: str | None = None
    suspect_ref: str | None = None
    victim_ref: str | None = None
    has_narrative: bool | None = None
    quality_flags: str | None = None
    ingested_at: str | None = None
    suspect: str | None = None
    victim: str | None = None
    narrative: str | None = None


class IncidentPage(BaseModel):
    """A page of incidents, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""

    items: list[IncidentOut]
    next_cursor: str | None
    limit: int = Field(description="the page size used (capped at the server's maximum)")
    fields: Literal["standard", "personal"]


class SeriesOut(BaseModel):
    """A zero-filled count series (with STL components when asked)."""

    period: str
    points: list[dict[str, Any]]
    excluded: int = 0
    parameters: dict[str, Any] = Field(default_factory=dict)
    note: str | None = None
    model_config = ConfigDict(json_schema_extra={"examples": [{"period": "week", "points": [
        {"period_start": "2024-01-01", "count": 412.0, "trend": 400.2, "seasonal": 8.1, "resid": 3.7}],
        "excluded": 0, "parameters": {"period": "week"}, "note": None}]})


class MatrixOut(BaseModel):
    """Weekday × hour counts."""

    weekdays: list[str]
    hours: list[int]
    values: list[list[int]]
    excluded: int = 0
    timezone: str = "UTC"


class RowsOut(BaseModel):
    """A table of rows."""

    rows: list[dict[str, Any]]
    area: str | None = None


class PublicCellOut(BaseModel):
    """One cell of a public table; ``count`` is null when suppressed."""

    area: str
    period: str
    count: int | None
    suppressed: bool


class PublicTableOut(BaseModel):
    """An area × period table with margins (``"all"``) and small cells suppressed (PRV-03)."""

    k: int
    area: str
    period: str
    rows: list[PublicCellOut]
    protection: dict[str, Any]


class CompStatOut(BaseModel):
    """CompStat: offences × 7-day, 28-day and year-to-date windows against last year."""

    method: str
    windows: dict[str, dict[str, str]]
    rows: list[dict[str, Any]]
    parameters: dict[str, Any] = Field(default_factory=dict)


class FeatureCollectionOut(BaseModel):
    """A WGS84 GeoJSON FeatureCollection with the parameters that shaped it."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[dict[str, Any]]
    parameters: dict[str, Any] = Field(default_factory=dict)
    class_counts: dict[str, int] | None = None


class ForecastOut(FeatureCollectionOut):
    """The latest risk surface of one model (its top cells)."""

    model: str
    created_at: str | None = None


class ModelOut(BaseModel):
    """A forecasting model with its latest surface and leaderboard metrics."""

    name: str
    created_at: str | None
    metrics: dict[str, Any] = Field(default_factory=dict)


class ModelsOut(BaseModel):
    """Models and the latest leaderboard."""

    models: list[ModelOut]
    leaderboard: list[dict[str, Any]]
    registry: list[dict[str, Any]] = Field(default_factory=list, description="registered models: versions "
                                           "(manifest summaries) and aliases (docs/operations.md)")


class QuarantineSummaryOut(BaseModel):
    """Quarantined rows per source and reason."""

    total: int
    by_reason: list[dict[str, Any]]


class QuarantineRowsOut(BaseModel):
    """Quarantined rows (raw values may hold personal data: reason required)."""

    rows: list[dict[str, Any]]


class JobOut(BaseModel):
    """A background job."""

    id: str
    kind: str
    owner: str
    status: Literal["queued", "running", "done", "failed"]
    progress: int
    created_at: str
    finished_at: str | None
    params: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None


class AuditRowOut(BaseModel):
    """One audit event."""

    seq: int
    ts: str
    component: str
    event: str
    username: str | None
    outcome: str
    object_id: str | None
    source_ip: str | None
    request_id: str | None
    reason: str | None
    detail: str | None
    prev_hash: str
    hash: str


class AuditVerifyOut(BaseModel):
    """Result of recomputing the audit hash chain."""

    ok: bool
    rows: int
    first_bad: int | None


class HealthOut(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"
    version: str


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses."""
    text = {400: "Bad request", 401: "Not authenticated", 403: "Forbidden", 404: "Not found",
            409: "Conflict", 413: "Too large", 423: "Locked", 429: "Too many requests",
            503: "Store busy"}
    return {c: {"model": ErrorOut, "description": text[c]} for c in codes}
