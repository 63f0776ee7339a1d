"""The application tables kept beside a store's own: their DDL, in one place.

The service (accounts, sessions, audit, jobs, change counters, products), its scheduler and
erasure log, the alert tables, the news feeds and the stored patrol plans live in the same database as the
incidents. Their owners create them when first used (``CREATE TABLE IF NOT EXISTS``, so a DuckDB
file gains them as it is served), and on PostgreSQL they are also one numbered migration step
(:data:`crimelens.store.migrations.STEPS`, step 5), so ``crimelens db upgrade`` leaves an agency
database with every table before a service process starts. The DDL is written once for both
backends (``VARCHAR``, ``TIMESTAMPTZ``, ``BOOLEAN``, ``BIGINT``, ``DOUBLE PRECISION`` mean the
same on DuckDB and PostgreSQL). What each table holds is documented by its owner:
:mod:`crimelens.service.tables`, :mod:`crimelens.service.scheduler`,
:mod:`crimelens.service.erasure`, :mod:`crimelens.notify.tables`, :mod:`crimelens.connectors.feeds`,
:mod:`crimelens.patrol.plans_table`.
"""

from __future__ import annotations

SERVICE_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS svc_users (
        username VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, password_hash VARCHAR NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE, can_export BOOLEAN NOT NULL DEFAULT FALSE,
        sources VARCHAR NOT NULL DEFAULT '', failed INTEGER NOT NULL DEFAULT 0, locked_until TIMESTAMPTZ,
        totp_secret VARCHAR, totp_enabled BOOLEAN NOT NULL DEFAULT FALSE, totp_last_step BIGINT,
        created_at TIMESTAMPTZ NOT NULL, password_changed_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS svc_sessions (
        token_hash VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS svc_audit (
        seq BIGINT PRIMARY KEY, ts TIMESTAMPTZ NOT NULL, component VARCHAR NOT NULL, event VARCHAR NOT NULL,
        username VARCHAR, outcome VARCHAR NOT NULL, object_id VARCHAR, source_ip VARCHAR,
        request_id VARCHAR, reason VARCHAR, detail VARCHAR, prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS svc_jobs (
        id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, owner VARCHAR NOT NULL, status VARCHAR NOT NULL,
        progress BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ,
        params VARCHAR, result VARCHAR, error VARCHAR)""",
    "CREATE TABLE IF NOT EXISTS svc_state (name VARCHAR PRIMARY KEY, n BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS svc_products (
        kind VARCHAR NOT NULL, name VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL, payload VARCHAR NOT NULL)""",
)

SCHEDULE_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS svc_job_schedule (
        name VARCHAR PRIMARY KEY, cron VARCHAR NOT NULL, enabled BOOLEAN NOT NULL DEFAULT TRUE,
        next_run_at TIMESTAMPTZ, last_run_at TIMESTAMPTZ, requested VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS svc_job_history (
        id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, started_at TIMESTAMPTZ NOT NULL,
        finished_at TIMESTAMPTZ, duration_s DOUBLE PRECISION, outcome VARCHAR NOT NULL, reason VARCHAR,
        result VARCHAR, error VARCHAR)""",
)

ERASURE_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS svc_erasures (
        id VARCHAR PRIMARY KEY, erased_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL, actor VARCHAR NOT NULL,
        n_incidents BIGINT NOT NULL, ids VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS svc_training_exclusions (
        source VARCHAR NOT NULL, incident_id VARCHAR NOT NULL, erasure_id VARCHAR NOT NULL,
        erased_at TIMESTAMPTZ NOT NULL)""",
)

ALERT_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS alerts (
        alert_id VARCHAR PRIMARY KEY, key VARCHAR NOT NULL, kind VARCHAR NOT NULL, method VARCHAR, rule VARCHAR,
        area_level VARCHAR, area VARCHAR, category VARCHAR, window_start TIMESTAMPTZ, window_end TIMESTAMPTZ,
        observed DOUBLE PRECISION, expected DOUBLE PRECISION, p_value DOUBLE PRECISION,
        q_value DOUBLE PRECISION, severity VARCHAR NOT NULL,
        status VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL,
        payload VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_feedback (
        alert_id VARCHAR NOT NULL, action VARCHAR NOT NULL, label VARCHAR, note VARCHAR, username VARCHAR,
        at_time TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_outbox (
        delivery_id VARCHAR PRIMARY KEY, alert_id VARCHAR, channel VARCHAR NOT NULL, target VARCHAR NOT NULL,
        payload VARCHAR NOT NULL, status VARCHAR NOT NULL, attempts INTEGER NOT NULL,
        next_attempt_at TIMESTAMPTZ NOT NULL, last_error VARCHAR, created_at TIMESTAMPTZ NOT NULL,
        sent_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS alert_delivery_log (
        delivery_id VARCHAR NOT NULL, attempt INTEGER NOT NULL, at_time TIMESTAMPTZ NOT NULL, ok BOOLEAN NOT NULL,
        error VARCHAR)""",
)

FEEDS_DDL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS feeds (
        url VARCHAR PRIMARY KEY, title VARCHAR, added_at TIMESTAMPTZ NOT NULL, last_sync TIMESTAMPTZ,
        last_status VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS feed_items (
        item_id VARCHAR PRIMARY KEY, feed_url VARCHAR NOT NULL, guid VARCHAR, link VARCHAR, title VARCHAR,
        summary VARCHAR, published_at TIMESTAMPTZ, fetched_at TIMESTAMPTZ NOT NULL,
        category VARCHAR, category_score DOUBLE PRECISION, category_method VARCHAR, topics VARCHAR,
        sentiment DOUBLE PRECISION, sentiment_label VARCHAR, place VARCHAR, place_precision VARCHAR,
        lat DOUBLE PRECISION, lon DOUBLE PRECISION, provenance VARCHAR NOT NULL)""",
)

PATROL_PLANS_DDL = ("CREATE TABLE IF NOT EXISTS patrol_plans (plan_id VARCHAR PRIMARY KEY, "
                    "created_at TIMESTAMPTZ NOT NULL, day VARCHAR NOT NULL, method VARCHAR NOT NULL, "
                    "units INTEGER NOT NULL, shifts INTEGER NOT NULL, policy VARCHAR, geojson VARCHAR NOT NULL)")

#: Every application table, in creation order.
ALL_DDL: tuple[str, ...] = (*SERVICE_DDL, *SCHEDULE_DDL, *ERASURE_DDL, *ALERT_DDL, *FEEDS_DDL, PATROL_PLANS_DDL)
