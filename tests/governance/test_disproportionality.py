"""Disproportionality on generated stops with planted rates, hit rates and outcomes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.exceptions import InputError
from crimelens.governance.disproportionality import disproportionality, poisson_ci, rate_ratio_ci
from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import TEST_KEY
from tests.sources.kinds_files import STOPS_HEADER, stop_row, write

POP = {"White": 400_000, "Black": 60_000, "Asian": 90_000, "Mixed": 30_000}
RATE = {"White": 4.0, "Black": 16.0, "Asian": 6.0, "Mixed": 8.0}  # stops per 1,000 residents
HIT = {"White": 0.30, "Black": 0.18, "Asian": 0.30, "Mixed": 0.30}


def planted(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for g in POP:
        n = rng.poisson(RATE[g] * POP[g] / 1000)
        hit = rng.random(n) < HIT[g]
        parts.append(pd.DataFrame({"subject_ethnicity_officer": g, "search_hit": hit,
                                   "outcome": np.where(hit, "Arrest", "A no further action disposal")}))
    return pd.concat(parts, ignore_index=True)


def population() -> pd.DataFrame:
    return pd.DataFrame({"group": list(POP), "population": list(POP.values())})


def test_planted_rates_and_ratios_are_recovered_within_their_intervals() -> None:
    res = disproportionality(planted(3), population())
    assert res.reference == "White"  # the largest population
    rows = {g.group: g for g in res.groups}
    for g, row in rows.items():
        assert row.rate_ci[0] <= RATE[g] <= row.rate_ci[1], (g, row.rate_ci)
        assert row.hit_rate is not None and row.hit_rate["ci"][0] <= HIT[g] <= row.hit_rate["ci"][1]
        assert row.outcomes["arrest"]["rate"] == pytest.approx(row.hit_rate["rate"])  # arrest exactly when found
        if g != "White":
            lo, hi = row.rate_ratio_ci  # type: ignore[misc]
            assert lo <= RATE[g] / RATE["White"] <= hi and row.rate_ratio_method == "katz_log"
    black = rows["Black"].hit_rate["vs_reference"]  # type: ignore[index]
    assert black["ci"][1] < 0 and black["p_value"] < 1e-6  # searched on less evidence
    assert rows["Asian"].hit_rate["vs_reference"]["ci"][0] < 0 < rows["Asian"].hit_rate["vs_reference"]["ci"][1]  # type: ignore[index]
    assert res.hit_rate_test is not None and res.hit_rate_test["p_value"] < 1e-6


def test_equal_hit_rates_are_not_flagged() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"subject_ethnicity_officer": rng.choice(list(POP), 4000),
                          "search_hit": rng.random(4000) < 0.25})
    res = disproportionality(frame, population())
    assert res.hit_rate_test is not None and res.hit_rate_test["p_value"] > 0.01


def test_interval_coverage_by_simulation() -> None:
    """Katz and exact rate-ratio intervals, and the Poisson rate interval, cover about 95%."""
    rng = np.random.default_rng(11)
    for mean_a, mean_c in ((40.0, 60.0), (3.0, 5.0)):  # Katz territory, then exact territory
        n1, n2, true = 10_000.0, 20_000.0, (mean_a / 10_000) / (mean_c / 20_000)
        a, c = rng.poisson(mean_a, 400), rng.poisson(mean_c, 400)
        cover = [lo <= true <= hi for lo, hi, _ in (rate_ratio_ci(int(x), n1, int(y), n2, 0.95)
                                                    for x, y in zip(a, c, strict=True))]
        assert 0.92 <= np.mean(cover) <= 0.995, (mean_a, np.mean(cover))
    counts = rng.poisson(7.0, 400)
    assert np.mean([poisson_ci(int(k), 0.95)[0] <= 7.0 <= poisson_ci(int(k), 0.95)[1] for k in counts]) >= 0.93


def test_small_counts_use_the_exact_interval_and_unmatched_groups_are_reported() -> None:
    frame = pd.DataFrame({"subject_ethnicity_officer": ["White"] * 50 + ["Mixed"] * 2 + ["Other"] * 3 + [None]})
    res = disproportionality(frame, population(), reference="white")
    mixed = next(g for g in res.groups if g.group == "Mixed")
    assert mixed.rate_ratio_method == "exact_conditional" and mixed.rate_ratio_ci[0] < mixed.rate_ratio < \
        mixed.rate_ratio_ci[1]  # type: ignore[index,operator]
    assert next(g for g in res.groups if g.group == "Asian").rate_ratio_ci[0] == 0.0  # type: ignore[index]
    assert res.unmatched == {"Other": 3} and res.not_recorded == 1 and res.hit_rate_test is None


@pytest.mark.parametrize("table, message", [
    (pd.DataFrame({"grp": ["a"], "population": [1]}), "needs columns"),
    (pd.DataFrame({"group": ["a", "A"], "population": [1, 2]}), "twice"),
    (pd.DataFrame({"group": ["a"], "population": [0]}), "positive"),
])
def test_bad_population_tables(table: pd.DataFrame, message: str) -> None:
    with pytest.raises(InputError, match=message):
        disproportionality(pd.DataFrame({"subject_ethnicity_officer": ["a"]}), table)


def test_audit_stops_cli(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    rows = [stop_row(i, ethnicity=str(g), linked="True" if rng.random() < 0.3 else "False")
            for i, g in enumerate(rng.choice(["White", "Black", "Asian"], 400, p=[0.5, 0.3, 0.2]))]
    csv = write(tmp_path / "2024-01-metropolitan-stop-and-search.csv", STOPS_HEADER, rows)
    db = str(tmp_path / "s.duckdb")
    with connect(db) as store:
        assert ingest_file(store, csv, key=TEST_KEY).stored == 400
    pop = tmp_path / "pop.csv"
    pop.write_text("group,population\nWhite,50000\nBlack,10000\nAsian,12000\n")
    runner = CliRunner()
    res = runner.invoke(app, ["audit", "stops", "--population", str(pop), "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["kinds"] == ["stop"] and doc["records"] == 400 and doc["reference"] == "White"
    assert {g["group"] for g in doc["groups"]} == {"White", "Black", "Asian"} and doc["hit_rate_test"]
    human = runner.invoke(app, ["audit", "stops", "--population", str(pop), "--db", db, "--group", "sex"])
    assert human.exit_code == 2 and "none of the records' subject_sex values" in human.output
    bad = runner.invoke(app, ["audit", "stops", "--population", str(tmp_path / "none.csv"), "--db", db])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    crimes = runner.invoke(app, ["audit", "stops", "--population", str(pop), "--db", db, "--kind", "arrest"])
    assert crimes.exit_code == 2 and "no arrest records" in crimes.output
