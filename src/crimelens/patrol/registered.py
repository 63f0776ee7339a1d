"""The ``rl`` policy in the model registry: registered as ``patrol-rl``, loaded by alias or version.

A registry version holds ``policy.npz`` as its artifact; the policy's own manifest (city spec:
grid, cells digest, shifts, groups; simulator config; training settings and report; evaluation)
is kept in the registry manifest's ``extra["policy"]``, so ``crimelens models list|show`` show it
and :func:`load_registered` refuses a city it was not trained for exactly as a policy directory is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crimelens.patrol.artifact import ARRAYS, policy_from, read_manifest
from crimelens.patrol.schedulers import ThompsonPolicy
from crimelens.patrol.simulator import ShiftCity
from crimelens.registry.manifest import Manifest, RegistryError
from crimelens.registry.store import ModelRegistry

#: Registry name of the learned patrol policy.
POLICY_NAME = "patrol-rl"


def register_policy(registry: ModelRegistry, policy_dir: str | Path, *, by: str = "system",
                    reason: str = "crimelens patrol schedule") -> Manifest:
    """Register the saved policy in ``policy_dir`` as the candidate of ``patrol-rl``; a first version
    (no production yet) also becomes production, so ``patrol schedule --method rl`` finds it."""
    root = Path(policy_dir)
    doc = read_manifest(root)
    training: dict[str, Any] = doc.get("training") or {}
    evaluation: dict[str, Any] = doc.get("evaluation") or {}
    harm = evaluation.get("harm_prevented_per_shift_in_simulator") or {}
    metrics = {f"harm_prevented_per_shift:{k}": float(v) for k, v in harm.items()}
    if float(harm.get("mclp-fair") or 0) > 0 and "rl" in harm:  # the promotion metric (registry.metric_for)
        metrics["harm_vs_mclp_fair"] = round(float(harm["rl"]) / float(harm["mclp-fair"]), 4)
    draft = Manifest(
        name=POLICY_NAME, version="", kind="patrol_policy", created_at="",
        training_window={"start": None, "end": training.get("trained_before"), "incidents": None},
        params={"config": doc["config"], "tolerance": doc.get("tolerance"),
                "training": (training.get("settings") or {}).get("training")},
        data_fingerprint=doc["city"].get("cells_digest"), code_version=_code_version(), metrics=metrics,
        bias_audit=dict(evaluation.get("fairness_audit") or {}),  # empty: the promotion rule refuses
        parent=registry.aliases(POLICY_NAME).get("production") if POLICY_NAME in registry.names()
        else None, artifact=ARRAYS, reason=reason,
        extra={"policy": doc, "policy_version": doc["version"], "grid": doc["city"]["grid"],
               "shifts": doc["city"]["shifts"]},
    )
    m = registry.register(draft, root / ARRAYS, by=by)
    if "production" not in registry.aliases(POLICY_NAME):
        registry.set_alias(POLICY_NAME, "production", m.version, by=by, note="first patrol policy")
    return m


def registered_doc(registry: ModelRegistry, ref: str = "production") -> tuple[Manifest, dict[str, Any], Path]:
    """The registry manifest of ``patrol-rl`` at ``ref``, its policy manifest and its arrays file."""
    m = registry.get(POLICY_NAME, ref)
    doc = m.extra.get("policy")
    if m.kind != "patrol_policy" or not isinstance(doc, dict):
        raise RegistryError(f"{POLICY_NAME}/{m.version} is not a patrol policy")
    return m, doc, registry.artifact(m)


def load_registered(registry: ModelRegistry, city: ShiftCity, *, ref: str = "production",
                    units: int | None = None) -> tuple[ThompsonPolicy, str]:
    """The registered policy at ``ref`` for ``city`` (refused when it was trained for another) and
    ``patrol-rl@vN``."""
    m, doc, arrays = registered_doc(registry, ref)
    return policy_from(doc, arrays, city, units=units), f"{POLICY_NAME}@{m.version}"


def _code_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crimelens")
    except PackageNotFoundError:
        return "unknown"
