"""The rl policy as a versioned artifact, refused on a city it was not trained for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid
from crimelens.patrol.artifact import PolicyMismatchError, load_policy, read_manifest, save_policy
from crimelens.patrol.evaluation import plan_shifts
from crimelens.patrol.simulator import ShiftCity, SimConfig, shift_structure
from crimelens.patrol.training import TrainingSettings, train_policy

from .toy import planted_city


def test_saved_policy_plans_the_same_and_refuses_other_cities(tmp_path: Path) -> None:
    city, _ = planted_city()
    cfg = SimConfig(units=4)
    est = city.rates * cfg.report_prob
    settings = TrainingSettings(steps=30, batch=4)
    policy, report = train_policy(city, est, cfg, settings)
    manifest = save_policy(policy, tmp_path / "p", training={"settings": settings.to_dict(),
                                                             "report": report.to_dict()},
                           evaluation={"harm": 1.0})
    assert len(manifest["version"]) == 12 and read_manifest(tmp_path / "p")["training"]["settings"]["steps"] == 30
    back = load_policy(tmp_path / "p", city, units=4)
    assert np.array_equal(plan_shifts(back, est), plan_shifts(policy, est))
    # other shift structure
    two = ShiftCity(city.grid, city.cells, city.rates[:2], shift_structure(2), city.groups, city.group_names)
    with pytest.raises(PolicyMismatchError, match="shifts"):
        load_policy(tmp_path / "p", two)
    # other grid (cell size), other study area, other unit count
    g = city.grid
    moved = ShiftCity(SquareGrid(g.x0, g.y0, 200.0, g.nx, g.ny, g.crs), city.cells, city.rates, city.shifts,
                      city.groups, city.group_names)
    with pytest.raises(PolicyMismatchError, match="grid"):
        load_policy(tmp_path / "p", moved)
    keep = city.cells[1:]
    smaller = ShiftCity(city.grid, keep, city.rates[:, 1:], city.shifts, city.groups[1:], city.group_names)
    with pytest.raises(PolicyMismatchError, match="study-area cells"):
        load_policy(tmp_path / "p", smaller)
    with pytest.raises(PolicyMismatchError, match="units"):
        load_policy(tmp_path / "p", city, units=5)
    # a tampered array file or a directory that is not a policy
    (tmp_path / "p" / "policy.npz").write_bytes(b"not the arrays")
    with pytest.raises(InputError, match="hash"):
        load_policy(tmp_path / "p", city)
    with pytest.raises(InputError, match="not a patrol policy"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "something else"}))
    with pytest.raises(InputError, match="not a patrol policy"):
        read_manifest(tmp_path)
