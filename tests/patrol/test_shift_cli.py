"""``crimelens patrol evaluate`` and ``patrol schedule`` end to end on a generated, ingested city."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app

runner = CliRunner()
FAST = ["--cell", "150", "--radius", "150", "--steps", "40", "--batch", "4", "--group-km", "3"]


def test_evaluate_reports_every_method(db: str) -> None:
    r = runner.invoke(app, ["patrol", "evaluate", "--db", db, "--methods", "greedy,mclp,mclp-fair,rl",
                            "--from", "2022-06-06", "--to", "2022-06-20", "--units", "6", "--feedback-weeks", "8",
                            *FAST, "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["weeks"] == ["2022-06-06", "2022-06-13"] and got["incidents"] > 0
    assert set(got["methods"]) == {"greedy", "mclp", "mclp-fair", "rl"}
    for m in got["methods"].values():
        assert 0 <= m["captured"] <= got["incidents"] and m["harm_prevented_per_shift"] > 0
        assert m["fairness"]["max_ratio"] > 0 and 0 < m["stability"]["last_weeks_share"] <= 1
    # the optimiser covers the most forecast crime, so it prevents the most in the simulator without displacement
    assert got["methods"]["mclp"]["harm_prevented_per_shift"] >= got["methods"]["greedy"]["harm_prevented_per_shift"]
    # rl keeps the tightest fairness the unit count allows
    assert got["methods"]["rl"]["fairness"]["max_ratio"] <= got["methods"]["greedy"]["fairness"]["max_ratio"]
    # the optimiser inside rl's caps is as fair as rl and never less fair than the free one
    fair = got["methods"]["mclp-fair"]["fairness"]["max_ratio"]
    assert fair <= got["methods"]["mclp"]["fairness"]["max_ratio"] + 1e-9
    assert fair <= got["methods"]["rl"]["fairness"]["max_ratio"] + 1e-9
    for key in ("rl_vs_mclp", "rl_vs_mclp_fair"):
        d = got[key]
        assert d["low"] <= d["mean_diff"] <= d["high"]
    assert got["training"]["shifts_per_s_mean"] > 0


def test_schedule_writes_shift_plans_and_saved_policies_are_checked(db: str, tmp_path: Path) -> None:
    out, pol = tmp_path / "plan.geojson", tmp_path / "policy"
    r = runner.invoke(app, ["patrol", "schedule", "--db", db, "--method", "rl", "--shifts", "3", "--units", "5",
                            "--at", "2022-06-06", "--out", str(out), "--save-policy", str(pol), *FAST, "--json"])
    assert r.exit_code == 0, r.output
    geo = json.loads(out.read_text())
    sites = [f for f in geo["features"] if f["properties"]["kind"] == "site"]
    assert sorted({f["properties"]["shift"] for f in sites}) == ["day", "evening", "night"] and len(sites) == 15
    assert len(geo["plan"]["harm_prevented_per_shift"]) == 3
    version = json.loads(r.stdout)["policy"]
    assert json.loads((pol / "manifest.json").read_text())["version"] == version
    # the saved policy plans a later day on the same grid
    r = runner.invoke(app, ["patrol", "schedule", "--db", db, "--method", "rl", "--units", "5", "--at", "2022-06-13",
                            "--out", str(out), "--policy", str(pol), *FAST, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["policy"] == version
    # and is refused for another shift structure or grid, with one line and exit 2
    for extra in (["--shifts", "2"], ["--cell", "200"]):
        args = ["patrol", "schedule", "--db", db, "--method", "rl", "--units", "5", "--out", str(out),
                "--policy", str(pol), *FAST, *extra]
        r = runner.invoke(app, args)
        assert r.exit_code == 2, r.output
        assert "the policy was trained" in r.stderr and "Traceback" not in r.output
    for args in (["--method", "ppo"], ["--out", str(tmp_path / "plan.txt")], ["--method", "greedy", "--save-policy",
                                                                             str(pol)]):
        r = runner.invoke(app, ["patrol", "schedule", "--db", db, *FAST, *args])
        assert r.exit_code == 2 and r.stderr.startswith("error:"), r.output
    r = runner.invoke(app, ["patrol", "evaluate", "--db", db, "--from", "2022-06-06"])
    assert r.exit_code == 2 and "--to" in r.stderr


def test_registered_policy_is_listed_loaded_by_default_and_refused_elsewhere(db: str, tmp_path: Path) -> None:
    reg, out = tmp_path / "models", tmp_path / "plan.geojson"
    base = ["patrol", "schedule", "--db", db, "--method", "rl", "--shifts", "3", "--units", "5", "--out", str(out),
            "--registry", str(reg), *FAST, "--json"]
    r = runner.invoke(app, [*base, "--at", "2022-06-06", "--train", "--register"])
    assert r.exit_code == 0, r.output
    first = json.loads(r.stdout)
    assert first["registered"] == "patrol-rl@v1" and first["training"] is not None
    r = runner.invoke(app, ["models", "list", "--registry", str(reg), "--json"])
    assert r.exit_code == 0, r.output
    (row,) = json.loads(r.stdout)["models"]
    assert row == {"name": "patrol-rl", "kind": "patrol_policy", "versions": ["v1"],
                   "aliases": {"production": "v1", "candidate": "v1"}}
    r = runner.invoke(app, ["models", "show", "patrol-rl", "--registry", str(reg), "--json"])
    shown = json.loads(r.stdout)
    assert shown["extra"]["policy_version"] == first["policy"]
    assert shown["extra"]["shifts"][0]["name"] == "day" and shown["params"]["config"]["units"] == 5
    assert "rl" in shown["extra"]["policy"]["evaluation"]["harm_prevented_per_shift_in_simulator"]
    # a plain rl schedule plans with production, without training
    r = runner.invoke(app, [*base, "--at", "2022-06-13"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["policy"] == "patrol-rl@v1" and got["training"] is None
    # a second registration is a candidate; production stays until promoted
    r = runner.invoke(app, [*base, "--at", "2022-06-13", "--train", "--register", "--seed", "1"])
    assert r.exit_code == 0 and json.loads(r.stdout)["registered"] == "patrol-rl@v2", r.output
    r = runner.invoke(app, [*base, "--at", "2022-06-13"])
    assert json.loads(r.stdout)["policy"] == "patrol-rl@v1"
    r = runner.invoke(app, [*base, "--at", "2022-06-13", "--version", "v2"])
    assert r.exit_code == 0 and json.loads(r.stdout)["policy"] == "patrol-rl@v2", r.output
    # production is refused on another grid or shift structure, with one line and exit 2
    for extra in (["--cell", "200"], ["--shifts", "2"]):
        r = runner.invoke(app, [*base, *extra])
        assert r.exit_code == 2, r.output
        assert "the policy was trained" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, [*base, "--version", "v9"])
    assert r.exit_code == 2 and "v9" in r.stderr
    # the promotion rule of a policy: its fairness audit (units per group within the caps on every
    # shift) and harm prevented relative to mclp-fair in its own simulator, not worse than production's
    from crimelens.registry import ModelRegistry

    versions = {v: ModelRegistry(reg).get("patrol-rl", v) for v in ("v1", "v2")}
    for m in versions.values():
        assert m.bias_audit["tolerance"] == 0.25 and set(m.bias_audit["caps"]) and "passed" in m.bias_audit
        harm = m.extra["policy"]["evaluation"]["harm_prevented_per_shift_in_simulator"]
        assert m.metrics["harm_vs_mclp_fair"] == pytest.approx(harm["rl"] / harm["mclp-fair"], abs=1e-4)
    r = runner.invoke(app, ["models", "promote", "patrol-rl", "--registry", str(reg), "--json"])
    decision = json.loads(r.stdout)
    v1, v2 = versions["v1"], versions["v2"]
    expected = v2.audit_passed and v2.metrics["harm_vs_mclp_fair"] >= v1.metrics["harm_vs_mclp_fair"]
    assert decision["metric"] == "harm_vs_mclp_fair" and decision["promote"] is expected, decision
    assert decision["candidate_score"] == v2.metrics["harm_vs_mclp_fair"]
    assert r.exit_code == (0 if expected else 1) and "Traceback" not in r.output
    if not expected:  # an admin may still promote, recorded in the alias history
        r = runner.invoke(app, ["models", "promote", "patrol-rl", "--registry", str(reg), "--force", "--json"])
        assert r.exit_code == 0 and "forced by" in " ".join(json.loads(r.stdout)["reasons"]), r.output
    # promoted, the candidate becomes what a plain rl schedule uses
    r = runner.invoke(app, [*base, "--at", "2022-06-13"])
    assert r.exit_code == 0 and json.loads(r.stdout)["policy"] == "patrol-rl@v2", r.output
