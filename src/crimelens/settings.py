"""Settings: one typed object, built only at the edges (CLI entry point, service factory).

Values come from the environment (``CRIMELENS_*``) or a ``.env`` file; secrets are never read
from the repository. The pseudonym key comes from ``CRIMELENS_PSEUDONYM_KEY`` or, failing
that, from a key file outside the data (created with mode 0600 on first use).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """crimelens settings (environment variables prefixed ``CRIMELENS_``)."""

    model_config = SettingsConfigDict(env_prefix="CRIMELENS_", env_file=".env", extra="ignore")

    db: str = "crimelens.duckdb"
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path = Field(default_factory=lambda: Path.home() / ".config" / "crimelens" / "pseudonym.key")

    # -- web service (crimelens serve; see docs/service.md) ----------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    session_idle_minutes: float = Field(default=30.0, gt=0, le=30, description="SEC-03: idle expiry, at most 30")
    session_absolute_hours: float = Field(default=12.0, gt=0, description="SEC-03: absolute session lifetime")
    lockout_attempts: int = Field(default=5, ge=1, description="SEC-01: consecutive failures before a lock")
    lockout_minutes: float = Field(default=30.0, gt=0, description="SEC-01: lock duration")
    totp_required_for_admins: bool = False
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tile_url: str | None = Field(default=None, description="optional raster XYZ/WMTS tile URL template "
                                   "({z}/{x}/{y}, or WMTS {TileMatrix}/{TileCol}/{TileRow}); its origin joins the CSP")
    basemap: Path | None = Field(default=None, description="MBTiles file served at /tiles/{z}/{x}/{y}.png "
                                  "(crimelens serve --basemap; docs/service.md)")
    audit_retention_days: int = Field(default=365, ge=365, description="AUD-04: audit rows kept at least this long")
    rate_login_per_minute: int = Field(default=10, ge=1)
    rate_search_per_minute: int = Field(default=240, ge=1)
    rate_export_per_minute: int = Field(default=5, ge=1)
    max_page_size: int = Field(default=500, ge=1, le=10_000)
    max_upload_mb: int = Field(default=500, ge=1)
    upload_dir: Path | None = None
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=1024)
    hotspot_cell_m: float = Field(default=250.0, gt=0)
    public_enabled: bool = Field(default=False, description="serve the anonymous /api/v1/public routes "
                                 "(small-cell-suppressed counts only; docs/privacy.md)")
    public_k: int = Field(default=10, ge=2, description="PRV-03: public counts below this are suppressed")
    rate_public_per_minute: int = Field(default=60, ge=1, description="per-address limit on public routes")

    # -- alerts, delivery and reports (see docs/alerts.md) ------------------------------------
    smtp_host: str | None = Field(default=None, description="SMTP server for alert and report email")
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_sender: str = "crimelens@localhost"
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    webhook_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key signing webhook bodies")
    alert_rules: Path | None = Field(default=None, description="rule book (TOML or JSON): rules, subscriptions")
    alert_email_to: str = Field(default="", description="comma-separated addresses receiving every alert")
    alert_webhook_urls: str = Field(default="", description="comma-separated URLs receiving every alert")
    alert_min_severity: str = "medium"
    alert_area_level: str = "district"
    alert_window_days: int = Field(default=7, ge=1)
    alert_fdr: float = Field(default=0.05, gt=0, lt=1)
    alert_scan_cron: str = Field(default="15 6 * * *", description="cron for the full alert scan")
    outbox_interval_s: int = Field(default=60, ge=5, description="seconds between retries of pending deliveries")
    report_cron: str = Field(default="0 7 * * MON", description="cron for the weekly CompStat report")
    report_email_to: str = Field(default="", description="comma-separated addresses receiving the weekly report")
    report_dir: Path = Path("reports")
    schedule_timezone: str = "UTC"

    # -- model registry, scheduled jobs, retention (see docs/operations.md) --------------------
    registry_dir: Path = Field(default=Path("models"), description="model registry directory")
    jobs_enabled: bool = Field(default=False, description="run the scheduled jobs (retrain, drift, purge ...)")
    jobs_admin_email: str = Field(default="", description="comma-separated addresses told of failed jobs")
    retention_file: Path | None = Field(default=None, description="retention schedule (TOML); default built in")

    # -- Spark engine (--engine spark; see docs/spark.md) -------------------------------------
    spark_master: str = Field(default="local[2]", description="Spark master: local[N], spark://HOST:7077, yarn "
                              "(--spark-master overrides)")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="extra Spark/Hadoop settings, JSON "
                                       "in CRIMELENS_SPARK_CONF (--spark-conf KEY=VALUE overrides per key)")

    # -- portal connectors (crimelens fetch; see docs/connectors.md) ---------------------------
    fetch_allow_hosts: str = Field(default="", description="SEC-14: comma-separated hosts (or *.suffix) "
                                   "that `crimelens fetch` may contact; empty allows none")
    fetch_max_mb: float = Field(default=100.0, gt=0, description="largest response body accepted, MB")
    fetch_timeout_s: float = Field(default=120.0, gt=0, description="deadline for one request, redirects included")
    socrata_app_token: SecretStr | None = Field(default=None, description="sent as X-App-Token, never logged")

    def key_bytes(self) -> bytes:
        """The pseudonym key: from the environment, else from the key file (created if absent)."""
        if self.pseudonym_key is not None:
            return self.pseudonym_key.get_secret_value().encode("utf-8")
        path = self.pseudonym_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text(encoding="utf-8").strip().encode("utf-8")
