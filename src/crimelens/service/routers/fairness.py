"""``/fairness/stops``: disproportionality of stops or arrests by group, for the dashboard's table.

The caller sends the population table (residents per group) with the request; the answer is
aggregated (counts, rates and intervals per group), never a record.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import pandas as pd
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from crimelens.filters import IncidentFilter
from crimelens.governance.disproportionality import disproportionality
from crimelens.service.deps import Analyst, Reader, midnight
from crimelens.service.records import scoped
from crimelens.service.schemas import errors

router = APIRouter(tags=["fairness"], responses=errors(401, 403))

_GROUPS = {"officer": "subject_ethnicity_officer", "self": "subject_ethnicity_self", "sex": "subject_sex",
           "age": "subject_age_band"}


Kind = Literal["stop", "arrest"]


def _stops_only() -> list[Kind]:
    return ["stop"]


class PopulationRow(BaseModel):
    """Residents of one group."""

    model_config = ConfigDict(extra="forbid")
    group: str = Field(min_length=1, max_length=100)
    population: float = Field(gt=0)


class StopsAuditIn(BaseModel):
    """What to audit: the population benchmark, the grouping, the record kinds and the period."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "population": [{"group": "White", "population": 400000}, {"group": "Black", "population": 60000}],
        "group": "officer", "kinds": ["stop"]}]})
    population: list[PopulationRow] = Field(min_length=1, max_length=500)
    group: Literal["officer", "self", "sex", "age"] = "officer"
    reference: str | None = Field(default=None, max_length=100)
    kinds: list[Kind] = Field(default_factory=_stops_only, min_length=1, max_length=2)
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")
    sources: list[str] = Field(default_factory=list, max_length=50)
    level: float = Field(default=0.95, gt=0.5, lt=1)


@router.post("/fairness/stops", response_model=dict[str, Any],
             summary="Stop or arrest rates per 1,000 residents by group, rate ratios and hit rates")
def stops(body: StopsAuditIn, who: Analyst, store: Reader) -> dict[str, Any]:
    """Rates per 1,000 residents with exact intervals, rate ratios (Katz or exact), outcome rates and the
    Knowles-Persico-Todd hit-rate test (see docs/fairness.md for the benchmark's limits)."""
    flt = scoped(IncidentFilter(start=midnight(body.start), end=midnight(body.end), sources=tuple(body.sources)),
                 who)
    flt = IncidentFilter(start=flt.start, end=flt.end, sources=flt.sources, kinds=tuple(body.kinds))
    column = _GROUPS[body.group]
    records = store.incidents(flt, columns=[column, "outcome", "search_hit"])
    table = pd.DataFrame([r.model_dump() for r in body.population])
    res = disproportionality(records, table, group_column=column, reference=body.reference, level=body.level)
    return {"kinds": list(flt.kinds), **res.to_dict()}
