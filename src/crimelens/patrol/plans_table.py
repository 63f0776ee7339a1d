"""Shift plans kept in the store: the ``patrol_plans`` table (DuckDB or PostgreSQL).

``crimelens patrol schedule`` saves each plan it writes here, so the service
(``GET /api/v1/patrol/plans``) and the dashboard can show it. One row per plan: an id, when it
was made, the day, method, units, shifts, the policy version (``rl``) and the plan's GeoJSON
(sites and covered cells by shift, WGS84; no incident data). Every statement goes through the
store's ``execute`` with ``?`` placeholders, the subset both backends read alike.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from crimelens.app_tables import PATROL_PLANS_DDL
from crimelens.exceptions import InputError

LIST_SQL = ("SELECT plan_id, created_at, day, method, units, shifts, policy FROM patrol_plans "
            "ORDER BY created_at DESC, plan_id LIMIT ?")
GET_SQL = "SELECT geojson FROM patrol_plans WHERE plan_id = ?"
EXISTS_SQL = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'patrol_plans'"


def save_plan(store: object, geo: dict[str, Any], *, now: datetime | None = None) -> str:
    """Store the plan FeatureCollection ``geo`` (from :func:`shift_plan_geojson`) in ``store`` (any store
    with a ``?``-placeholder ``execute``: DuckDB and PostgreSQL); return its id."""
    plan = geo.get("plan")
    if not isinstance(plan, dict) or geo.get("type") != "FeatureCollection":
        raise InputError("not a shift plan: a FeatureCollection with a 'plan' member is needed")
    run = getattr(store, "execute", None)
    if run is None:
        raise InputError("this store cannot hold patrol plans: give a DuckDB file or a postgresql:// --db")
    plan_id = uuid.uuid4().hex[:12]
    run(PATROL_PLANS_DDL)
    policy = plan.get("policy")
    run("INSERT INTO patrol_plans (plan_id, created_at, day, method, units, shifts, policy, geojson) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [plan_id, now or datetime.now(UTC), str(plan["day"]), str(plan["method"]), int(plan["units"]),
         len(plan["shifts"]), None if policy is None else str(policy), json.dumps({**geo, "id": plan_id})])
    return plan_id
