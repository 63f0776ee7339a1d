"""CLI: ``crimelens models list|show|promote|rollback`` (the model registry), ``erase`` and
``retention`` (personal-data erasure and the retention schedule, SECURITY.md PRV-06)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from crimelens.cli.common import DbOpt, JsonOpt, db_url, emit, errors_to_exit, fail

models_app = typer.Typer(name="models", help="The model registry: versions, aliases, promotion, rollback.",
                         no_args_is_help=True)

RegistryOpt = Annotated[Path | None, typer.Option("--registry", help="Registry directory [default: "
                                                  "$CRIMELENS_REGISTRY_DIR or ./models].")]
NameArg = Annotated[str, typer.Argument(help="Model name, e.g. forecast-retro_kde.")]


def registry_dir(path: Path | None) -> Path:
    """The registry folder: the option, else ``$CRIMELENS_REGISTRY_DIR``, else ``./models``."""
    return path or Path(os.environ.get("CRIMELENS_REGISTRY_DIR") or "models")


def _open(path: Path | None) -> Any:
    from crimelens.registry import ModelRegistry

    root = registry_dir(path)
    if path is not None and not root.is_dir():
        fail(f"--registry: no registry folder at {root}")
    return ModelRegistry(root)


@models_app.command("list")
def list_models(registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Every registered model with its versions and aliases."""
    with errors_to_exit():
        reg = _open(registry)
        rows = []
        for name in reg.names():
            versions = reg.versions(name)
            rows.append({"name": name, "kind": versions[-1].kind if versions else None,
                         "versions": [v.version for v in versions], "aliases": reg.aliases(name)})
    human = "\n".join(f"{r['name']:<32} {r['kind'] or '-':<11} {len(r['versions'])} versions  "
                      + " ".join(f"{a}={v}" for a, v in r["aliases"].items()) for r in rows) or "no models registered"
    emit({"registry": str(reg.root), "models": rows}, as_json, human)


@models_app.command("show")
def show(name: NameArg,
         ref: Annotated[str, typer.Argument(help="Version (v3) or alias (production, candidate).")] = "production",
         registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """One version's manifest, with its lineage."""
    with errors_to_exit():
        reg = _open(registry)
        m = reg.get(name, ref)
        lineage = [v.version for v in reg.lineage(name, m.version)]
    doc = {**m.to_dict(), "aliases": [a for a, v in reg.aliases(name).items() if v == m.version],
           "lineage": lineage}
    emit(doc, as_json)


@models_app.command("promote")
def promote(name: NameArg,
            ref: Annotated[str, typer.Argument(help="Version or alias to promote.")] = "candidate",
            metric: Annotated[str | None, typer.Option("--metric", help="Agreed backtest metric (default: the "
                                                         "kind's: hit_rate@0.05 for forecasters, "
                                                         "harm_vs_mclp_fair for patrol policies).")] = None,
            tolerance: Annotated[float, typer.Option("--tolerance", help="Allowed shortfall on the metric.")] = 0.0,
            force: Annotated[bool, typer.Option("--force", help="Promote even when the rule refuses "
                                                "(recorded in the alias history).")] = False,
            registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Make a version production when its backtest is not worse and its bias audit passed."""
    from crimelens.registry import PromotionRule, metric_for

    with errors_to_exit():
        reg = _open(registry)
        agreed = metric or metric_for(reg.get(name, ref).kind)
        decision = reg.promote(name, ref, rule=PromotionRule(metric=agreed, tolerance=tolerance), force=force,
                               by=os.environ.get("USER", "cli"))
    doc = decision.to_dict()
    verdict = "promoted" if decision.promote else "refused"
    emit(doc, as_json, f"{name} {decision.candidate}: {verdict} — " + "; ".join(decision.reasons))
    if not decision.promote:
        raise typer.Exit(1)


@models_app.command("rollback")
def rollback(name: NameArg, registry: RegistryOpt = None, as_json: JsonOpt = False) -> None:
    """Point production back at the version it held before."""
    with errors_to_exit():
        reg = _open(registry)
        before = reg.aliases(name).get("production")
        version = reg.rollback(name, by=os.environ.get("USER", "cli"))
    emit({"name": name, "from": before, "production": version}, as_json,
         f"{name}: production {before} -> {version}")


def erase(
    incident: Annotated[list[str] | None, typer.Option("--incident", help="Incident id (SOURCE:ID or ID; "
                                                       "repeatable).")] = None,
    person: Annotated[list[str] | None, typer.Option("--person", help="Pseudonym of a suspect or victim "
                                                     "(repeatable).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (request reference); kept in the audit log.")]
    = "erasure request",
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a person's or an incident's personal data everywhere it lives (PRV-06)."""
    from crimelens.service.erasure import erase_personal

    if not incident and not person:
        fail("erase needs --incident ID or --person PSEUDONYM")
    with errors_to_exit():
        out = erase_personal(db_url(db), incidents=incident or [], persons=person or [], reason=reason,
                             actor=os.environ.get("USER", "cli"))
    emit(out, as_json, f"erased personal data of {out['incidents']} incidents "
                       f"({out['personal_rows']} restricted rows, {out['pseudonyms_cleared']} pseudonym fields); "
                       f"{out['training_exclusions']} excluded from the next retraining; audit #{out['audit_seq']}")


def retention(
    policy: Annotated[Path | None, typer.Option("--policy", help="Retention schedule (TOML) "
                                                "[default: the built-in one].")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="Remove what is due (default: only report).")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What the retention schedule removes now (and, with --apply, remove it)."""
    from crimelens.service.erasure import enforce_retention

    with errors_to_exit():
        out = enforce_retention(db_url(db), policy_file=policy, apply=apply, actor=os.environ.get("USER", "cli"))
    verb = "removed" if apply else "due"
    emit(out, as_json, f"retention: {out['fields']} personal fields of {out['incidents']} incidents {verb} "
                       f"(cut-offs: {', '.join(f'{k} {v}' for k, v in out['cutoffs'].items())})")


def register(app: typer.Typer) -> None:
    """Add ``models``, ``erase`` and ``retention`` to *app*."""
    app.add_typer(models_app, name="models")
    app.command("erase")(erase)
    app.command("retention")(retention)
