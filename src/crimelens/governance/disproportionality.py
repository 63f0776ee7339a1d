"""Disproportionality of stops, searches and arrests by group, against a population the user gives.

For each group (officer-defined ethnicity, say) the audit reports:

* the **rate per 1,000 residents**: records of the group / the group's population × 1,000, with
  an exact Poisson interval (Garwood 1936);
* the **rate ratio** against a reference group (the largest population unless named), with the
  Katz log interval ``exp(log RR ± z·sqrt(1/a − 1/n₁ + 1/c − 1/n₂))`` (Katz et al. 1978) where both
  counts are at least :data:`EXACT_BELOW`, else the exact conditional interval: given the
  two counts' sum, the group's count is binomial, and the Clopper-Pearson interval of its share
  converts to bounds on the ratio;
* **outcome rates** where outcomes are given: the share of the group's records ending in arrest,
  and in no further action, with Clopper-Pearson intervals;
* the **hit-rate (outcome) test** of Knowles, Persico & Todd (2001) where it is known whether a
  search found what it was for: if officers search whoever is most likely to carry contraband,
  hit rates are equal across groups in equilibrium whatever the groups' carrying rates, so a
  group with a lower hit rate is searched on less evidence. Each group's hit rate is compared
  with the reference group's (difference with a Newcombe-Wilson interval; Fisher's exact test), and
  all groups together with a chi-square test of equal hit rates.

Known limits (see ``docs/fairness.md``): the result depends on the benchmark. A residential
population is not the population present in a place (the ambient population: commuters,
visitors, night-time economy), nor the population exposed to the police (where patrols are,
who is outdoors); rates per resident can overstate or understate disparity accordingly. The
hit-rate test is immune to the benchmark but assumes officers act on the expected hit
rate and that "found" is recorded the same way for every group (the infra-marginality problem,
Simoiu, Corbett-Davies & Goel 2017, applies when thresholds differ by place or officer).

References
----------
Garwood, F. (1936). Fiducial limits for the Poisson distribution. *Biometrika* 28, 437-442.
Katz, D., Baptista, J., Azen, S. P. & Pike, M. C. (1978). Obtaining confidence intervals for
the risk ratio in cohort studies. *Biometrics* 34, 469-474.
Knowles, J., Persico, N. & Todd, P. (2001). Racial bias in motor vehicle searches: theory and
evidence. *Journal of Political Economy* 109(1), 203-229.
Simoiu, C., Corbett-Davies, S. & Goel, S. (2017). The problem of infra-marginality in outcome
tests for discrimination. *Annals of Applied Statistics* 11(3), 1193-1216.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crimelens.exceptions import InputError

#: Counts below this use the exact conditional interval for the rate ratio instead of Katz's.
EXACT_BELOW = 10
_ARREST = re.compile(r"\barrest", re.IGNORECASE)
_NFA = re.compile(r"no further action|nothing found", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One group's figures (rates per 1,000 residents; intervals at the audit's level)."""

    group: str
    records: int
    population: float
    rate_per_1000: float
    rate_ci: tuple[float, float]
    rate_ratio: float | None
    rate_ratio_ci: tuple[float, float] | None
    rate_ratio_method: str | None
    outcomes: dict[str, dict[str, Any]] = field(default_factory=dict)
    hit_rate: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Disproportionality:
    """The audit's result; :meth:`to_dict` is its JSON form."""

    group_column: str
    reference: str
    level: float
    records: int
    groups: list[GroupRow]
    not_recorded: int
    unmatched: dict[str, int]
    hit_rate_test: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form."""
        return {
            "group_column": self.group_column, "reference": self.reference, "level": self.level,
            "records": self.records, "not_recorded": self.not_recorded, "unmatched": self.unmatched,
            "groups": [_row_dict(g) for g in self.groups], "hit_rate_test": self.hit_rate_test,
        }


def _finite(v: float | None) -> float | None:
    """JSON has no infinity: an unbounded interval end is null."""
    return v if v is not None and math.isfinite(v) else None


def _row_dict(g: GroupRow) -> dict[str, Any]:
    return {
        "group": g.group, "records": g.records, "population": g.population,
        "rate_per_1000": g.rate_per_1000, "rate_ci": list(g.rate_ci), "rate_ratio": g.rate_ratio,
        "rate_ratio_ci": None if g.rate_ratio_ci is None else [_finite(v) for v in g.rate_ratio_ci],
        "rate_ratio_method": g.rate_ratio_method, "outcomes": g.outcomes, "hit_rate": g.hit_rate,
    }


def poisson_ci(count: int, level: float) -> tuple[float, float]:
    """Exact (Garwood) interval for a Poisson mean given one observed ``count``."""
    a = 1 - level
    lo = 0.0 if count == 0 else float(stats.chi2.ppf(a / 2, 2 * count) / 2)
    hi = float(stats.chi2.ppf(1 - a / 2, 2 * count + 2) / 2)
    return lo, hi


def rate_ratio_ci(a: int, n1: float, c: int, n2: float, level: float) -> tuple[float, float, str]:
    """Interval for the rate ratio ``(a/n1) / (c/n2)``: Katz log method, or exact when a count is small."""
    if min(a, c) >= EXACT_BELOW:
        z = float(stats.norm.ppf(1 - (1 - level) / 2))
        se = math.sqrt(max(1 / a - 1 / n1 + 1 / c - 1 / n2, 0.0))
        rr = (a / n1) / (c / n2)
        return rr * math.exp(-z * se), rr * math.exp(z * se), "katz_log"
    if a + c == 0:
        return 0.0, math.inf, "exact_conditional"
    ci = stats.binomtest(a, a + c).proportion_ci(confidence_level=level, method="exact")
    lo_p, hi_p = float(ci.low), float(ci.high)
    lo = lo_p / (1 - lo_p) * n2 / n1 if lo_p < 1 else math.inf
    hi = hi_p / (1 - hi_p) * n2 / n1 if hi_p < 1 else math.inf
    return lo, hi, "exact_conditional"


def _share(k: int, n: int, level: float) -> dict[str, Any]:
    if n == 0:
        return {"count": 0, "of": 0, "rate": None, "ci": None}
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="exact")
    return {"count": k, "of": n, "rate": k / n, "ci": [float(ci.low), float(ci.high)]}


def _wilson(k: int, n: int, z: float) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _hit_vs_reference(k1: int, n1: int, k0: int, n0: int, level: float) -> dict[str, Any]:
    """Difference of hit rates (group − reference): Newcombe's hybrid Wilson interval, Fisher's p."""
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    p1, p0 = k1 / n1, k0 / n0
    l1, u1 = _wilson(k1, n1, z)
    l0, u0 = _wilson(k0, n0, z)
    d = p1 - p0
    lo = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    hi = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    p = float(stats.fisher_exact([[k1, n1 - k1], [k0, n0 - k0]]).pvalue)
    return {"difference": d, "ci": [lo, hi], "p_value": p}


def disproportionality(
    records: pd.DataFrame,
    population: pd.DataFrame,
    *,
    group_column: str = "subject_ethnicity_officer",
    reference: str | None = None,
    level: float = 0.95,
) -> Disproportionality:
    """Audit ``records`` (one row per stop or arrest) by ``group_column`` against ``population``.

    Parameters
    ----------
    records
        Rows with ``group_column`` and, where known, ``outcome`` (text as published) and
        ``search_hit`` (whether the search found what it was for).
    population
        Columns ``group`` and ``population`` (residents); groups match the records' values
        case-insensitively. Records whose group the table lacks are counted in ``unmatched``,
        records without a group in ``not_recorded``; neither is dropped silently.
    reference
        Group the others are compared with; default the one with the largest population.
    level
        Confidence level of every interval.

    Raises
    ------
    InputError
        When the column is missing, the population table is malformed or the reference unknown.
    """
    if group_column not in records.columns:
        raise InputError(f"records have no column {group_column!r}")
    if not 0 < level < 1:
        raise InputError("the confidence level must be between 0 and 1")
    pop = _population_table(population)
    by_key = {k.lower(): k for k in pop.index}
    raw = records[group_column].astype("string").str.strip()
    key = raw.str.lower().map(by_key)
    not_recorded = int(raw.isna().sum())
    unmatched = raw[raw.notna() & key.isna()].value_counts()
    if raw.notna().any() and key.isna().all():
        raise InputError(f"none of the records' {group_column} values is in the population table "
                         f"(they are e.g. {', '.join(map(str, unmatched.index[:3]))})")
    ref = reference or str(pop.idxmax())
    if ref.lower() not in by_key:
        raise InputError(f"reference group {ref!r} is not in the population table ({', '.join(pop.index)})")
    ref = by_key[ref.lower()]
    counts = key.value_counts().reindex(pop.index, fill_value=0).astype(int)
    outcomes = records["outcome"].astype("string") if "outcome" in records.columns else None
    hits = records["search_hit"].astype("boolean") if "search_hit" in records.columns else None
    has_hits = hits is not None and bool(hits.notna().any())
    hit_counts = {g: (int(hits[(key == g) & hits.notna()].sum()), int(((key == g) & hits.notna()).sum()))
                  for g in pop.index} if has_hits and hits is not None else {}
    rows = []
    for g in pop.index:
        n, people = int(counts[g]), float(pop[g])
        lo, hi = poisson_ci(n, level)
        rr = rr_ci = method = None
        if g != ref:
            c, n_ref = int(counts[ref]), float(pop[ref])
            rr = (n / people) / (c / n_ref) if c else None
            r_lo, r_hi, method = rate_ratio_ci(n, people, c, n_ref, level)
            rr_ci = (r_lo, r_hi)
        outs: dict[str, dict[str, Any]] = {}
        if outcomes is not None:
            mine = outcomes[(key == g) & outcomes.notna()]
            outs = {"arrest": _share(int(mine.str.contains(_ARREST).sum()), len(mine), level),
                    "no_further_action": _share(int(mine.str.contains(_NFA).sum()), len(mine), level)}
        hit = None
        if hit_counts:
            k1, n1 = hit_counts[g]
            hit = _share(k1, n1, level)
            k0, n0 = hit_counts[ref]
            if g != ref and n1 and n0:
                hit["vs_reference"] = _hit_vs_reference(k1, n1, k0, n0, level)
        rows.append(GroupRow(str(g), n, people, 1000 * n / people, (1000 * lo / people, 1000 * hi / people),
                             rr, rr_ci, method, outs, hit))
    return Disproportionality(group_column, ref, level, len(records), rows, not_recorded,
                              {str(k): int(v) for k, v in unmatched.items()}, _hit_test(hit_counts))


def _hit_test(hit_counts: dict[Any, tuple[int, int]]) -> dict[str, Any] | None:
    """Chi-square test that every group with searches has the same hit rate."""
    table = np.array([[k, n - k] for k, n in hit_counts.values() if n > 0], dtype=float)
    if len(table) < 2 or (table.sum(axis=0) == 0).any():
        return None
    res = stats.chi2_contingency(table, correction=False)
    return {"method": "chi-square test of equal hit rates (Knowles, Persico & Todd 2001)",
            "chi2": float(res.statistic), "dof": int(res.dof), "p_value": float(res.pvalue),
            "groups": len(table)}


def _population_table(population: pd.DataFrame) -> pd.Series:
    cols = {c.strip().lower(): c for c in population.columns}
    if "group" not in cols or not ({"population", "residents"} & set(cols)):
        raise InputError("the population table needs columns 'group' and 'population'")
    values = pd.to_numeric(population[cols.get("population", cols.get("residents", ""))], errors="coerce")
    groups = population[cols["group"]].astype("string").str.strip()
    if groups.isna().any() or values.isna().any() or (values <= 0).any():
        raise InputError("every population row needs a group name and a positive population")
    if groups.str.lower().duplicated().any():
        raise InputError("the population table names a group twice")
    return pd.Series(values.to_numpy(dtype=float), index=pd.Index(groups.to_numpy(dtype=object), dtype=object))


def read_population(path: str) -> pd.DataFrame:
    """Read a population table (CSV: ``group,population``).

    Raises
    ------
    InputError
        When the file cannot be read as CSV or lacks the columns.
    """
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path}: cannot read the population table ({str(exc).splitlines()[0]})") from exc
    _population_table(frame)
    return frame
