"""Bias audits (BIA-03): allocation vs population per group, calibration per group on held-out
data, concentration, JSON and HTML output; on a small synthetic city."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_poisson_deviance

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.forecast.evaluation.metrics import hit_rate
from crimelens.governance.audit_report import render_html, write_audit
from crimelens.governance.fairness import (
    GroupMembership,
    Thresholds,
    audit_selection,
    cell_labels,
    gini,
    population_by_cell,
    selection_weights,
)
from crimelens.synth import CityConfig, SyntheticCity, generate_city

ORIGIN = pd.Timestamp("2022-11-01", tz="UTC")
END = ORIGIN + pd.Timedelta(days=28)


@pytest.fixture(scope="module")
def city() -> SyntheticCity:
    return generate_city(CityConfig(n_incidents=6_000, days=365, seed=21, size_m=8_000))


@pytest.fixture(scope="module")
def membership(city: SyntheticCity) -> GroupMembership:
    """Truth-grid cells with incidents, grouped by their modal community area."""
    grid = city.truth.grid
    labels = cell_labels(city.incidents, grid, "community_area")
    return GroupMembership.from_labels(labels.index.to_numpy(np.int64), labels.to_numpy())


def _held_out(city: SyntheticCity) -> np.ndarray:
    inc = city.incidents
    test = inc[(inc["occurred_at"] >= ORIGIN) & (inc["occurred_at"] < END)]
    cell = city.truth.grid.cell_of(test["x"].to_numpy(), test["y"].to_numpy())
    return np.bincount(cell[cell >= 0], minlength=city.truth.grid.n_cells).astype(float)


def test_selection_concentrated_in_one_group_is_flagged(membership: GroupMembership) -> None:
    n = int(membership.cells.max()) + 1
    biggest = membership.groups[int(np.argmax(membership.weights.sum(axis=0)))]
    in_big = membership.weights[:, membership.groups.index(biggest)] > 0
    score = np.zeros(n)
    score[membership.cells[in_big]] = 1.0 + np.linspace(0, 1, in_big.sum())
    audit = audit_selection(score, membership, coverage=0.1)
    by = {g.group: g for g in audit.groups}
    assert by[biggest].flag == "over" and by[biggest].allocation_share == pytest.approx(1.0)
    assert by[biggest].ratio == pytest.approx(1.0 / by[biggest].population_share)
    others = [g for g in audit.groups if g.group != biggest and g.flag != "small"]
    assert others and all(g.flag == "under" and g.allocation_share == 0.0 for g in others)
    assert not audit.passed and biggest in audit.flagged
    assert audit.concentration["top_group"] == biggest
    assert audit.concentration["disparity_ratio"] == 0.0 and audit.concentration["gini_selection_rate"] > 0.3


def test_proportional_selection_is_not_flagged(membership: GroupMembership) -> None:
    """Selecting the same share of every group's cells (top-ranked within the group) passes."""
    n = int(membership.cells.max()) + 1
    owner = np.asarray(membership.groups)[membership.weights.argmax(axis=1)]
    rng = np.random.default_rng(3)
    raw = pd.Series(rng.random(len(owner)))
    pct = raw.groupby(owner).rank(pct=True).to_numpy()  # within-group percentile
    score = np.full(n, -1.0)
    score[membership.cells] = pct
    audit = audit_selection(score, membership, coverage=0.2)
    assert audit.passed, audit.to_frame()[["group", "population_share", "ratio", "flag"]]
    assert all(0.8 <= g.ratio <= 1.25 for g in audit.groups if g.flag != "small")
    assert audit.concentration["gini_selection_rate"] < 0.05
    assert sum(g.allocation_share for g in audit.groups) == pytest.approx(1.0)
    assert sum(g.selected_cells for g in audit.groups) == pytest.approx(audit.k)


def test_calibration_per_group_on_held_out_window(city: SyntheticCity, membership: GroupMembership) -> None:
    surface = make("retro_count", grid=city.truth.grid).fit(city.incidents, until=ORIGIN).predict(horizon="28d")
    observed = _held_out(city)
    audit = audit_selection(surface, membership, coverage=0.05, observed=observed)
    expected = surface.expected()
    owner = np.asarray(membership.groups)[membership.weights.argmax(axis=1)]
    for g in audit.groups:
        cells = membership.cells[owner == g.group]
        assert g.observed == pytest.approx(observed[cells].sum())
        assert g.expected == pytest.approx(expected[cells].sum())
        assert g.calibration_ratio == pytest.approx(observed[cells].sum() / expected[cells].sum())
        dev = mean_poisson_deviance(observed[cells], np.clip(expected[cells], 1e-9, None))
        assert g.poisson_deviance == pytest.approx(dev)
    # the held-out window is real: overall hit rate matches the forecast metrics module
    assert audit.overall["incidents"] == pytest.approx(observed[membership.cells].sum()) and observed.sum() > 100
    ref = hit_rate(surface.score[membership.cells], observed[membership.cells], 0.05)
    assert audit.overall["hit_rate"] == pytest.approx(ref)
    assert sum(g.incident_share or 0 for g in audit.groups) == pytest.approx(1.0)
    assert audit.metadata["surface"]["model"] == "retro_count"


def test_population_layer_with_overlapping_groups() -> None:
    """Population per group per cell: a selection of the cells where group B lives over-serves B."""
    from crimelens.geo.grid import SquareGrid

    grid = SquareGrid(0.0, 0.0, 100.0, 10, 10, "local")
    cx, cy = grid.centres()
    b_share = np.clip(cx / 1000.0, 0.0, 1.0)  # group B lives to the east
    points = pd.DataFrame({"x": np.r_[cx, cx], "y": np.r_[cy, cy],
                           "group": ["A"] * 100 + ["B"] * 100,
                           "population": np.r_[100 * (1 - b_share), 100 * b_share]})
    table = population_by_cell(points, grid)
    assert set(table.columns) == {"cell_id", "group", "population"} and table["population"].sum() == 10_000
    m = GroupMembership.from_table(np.arange(100), table)
    audit = audit_selection(cx, m, coverage=0.2)  # the easternmost columns
    by = {g.group: g for g in audit.groups}
    assert by["B"].flag == "over" and by["A"].flag == "under"
    assert by["A"].population_share == pytest.approx(0.5) and by["B"].allocation_share == pytest.approx(0.9)
    assert audit.basis == "population"


def test_selection_ties_are_shared_by_expectation() -> None:
    w = selection_weights(np.array([3.0, 1.0, 1.0, 1.0, 0.0]), 2)
    assert w.tolist() == pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3, 0.0])
    m = GroupMembership.from_labels(np.arange(4), ["a", "a", "b", "b"])
    audit = audit_selection(np.ones(4), m, coverage=0.5, thresholds=Thresholds(min_fair_share=0.0))  # all tied
    assert audit.passed and all(g.ratio == pytest.approx(1.0) for g in audit.groups)
    assert gini(np.array([1.0, 1.0])) == 0.0 and gini(np.array([0.0, 1.0])) == pytest.approx(0.5)


def test_json_and_self_contained_html(city: SyntheticCity, membership: GroupMembership, tmp_path: Path) -> None:
    surface = make("retro_count", grid=city.truth.grid).fit(city.incidents, until=ORIGIN).predict(horizon="28d")
    audit = audit_selection(surface, membership, coverage=0.05, observed=_held_out(city),
                            metadata={"model": "retro_count"})
    doc = json.loads(audit.to_json())
    assert doc["kind"] == "crimelens-bias-audit/1" and len(doc["groups"]) == len(audit.groups)
    assert "NaN" not in audit.to_json() and doc["thresholds"]["low"] == 0.8
    html = render_html(audit)
    assert "data:image/png;base64," in html and "http://" not in html and "https://" not in html
    assert all(g.group in html for g in audit.groups)
    paths = write_audit(audit, tmp_path / "out")
    assert sorted(p.name for p in paths) == ["audit.html", "audit.json", "audit.png"]
    assert (tmp_path / "out" / "audit.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_inputs_raise() -> None:
    with pytest.raises(InputError):
        Thresholds(low=1.2)
    with pytest.raises(InputError):
        GroupMembership.from_labels([0, 1], ["a"])
    m = GroupMembership.from_labels([0, 5], ["a", "b"])
    with pytest.raises(InputError, match="cell ids"):
        audit_selection(np.ones(3), m, coverage=0.5)
    with pytest.raises(InputError, match="coverage"):
        audit_selection(np.ones(6), m, coverage=0.0)
    with pytest.raises(InputError, match="lacks columns"):
        GroupMembership.from_table([0], pd.DataFrame({"cell_id": [0]}))


def test_many_small_groups_make_the_audit_inconclusive_not_passed(membership: GroupMembership) -> None:
    """At 1 % coverage of a few hundred cells no group's fair share reaches five cells."""
    n = int(membership.cells.max()) + 1
    score = np.zeros(n)
    score[membership.cells[:3]] = 1.0
    audit = audit_selection(score, membership, coverage=0.01)
    assert audit.k < 5 * len(audit.groups) and not audit.flagged
    assert audit.status == "inconclusive" and not audit.passed and audit.small_share > 0.5
    assert json.loads(audit.to_json())["status"] == "inconclusive"
    assert "Inconclusive" in render_html(audit)
