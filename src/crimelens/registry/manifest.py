"""The manifest of one model version: what it was trained on, how, and how well it did.

A manifest is a JSON document (``format: crimelens-model-manifest/1``) written beside the model
artifact. Reading one checks its shape; anything else (bad JSON, missing keys, wrong types) is a
:class:`RegistryError` naming the file, so a damaged registry is reported, never half-read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

from crimelens.exceptions import InputError
from crimelens.jsonsafe import json_safe

FORMAT: Final = "crimelens-model-manifest/1"
KINDS: Final = ("forecaster", "classifier", "patrol_policy")


class RegistryError(InputError):
    """A registry, manifest or alias that cannot be read or changed as asked."""


@dataclass(frozen=True, slots=True)
class Manifest:
    """One registered model version.

    Parameters
    ----------
    name : str
        The model's registry name (``forecast-retro_kde``, ``classify-category`` ...).
    version : str
        ``v1``, ``v2`` ... in registration order, unique within ``name``.
    kind : str
        ``forecaster`` or ``classifier``.
    created_at : str
        ISO timestamp (UTC) of registration.
    training_window : dict
        ``{"start", "end", "incidents"}`` of the training data.
    params : dict
        The estimator's hyperparameters.
    data_fingerprint : str or None
        SHA-256 of the training data (order independent).
    code_version : str
        The crimelens version that fitted it.
    metrics : dict
        Rolling-backtest metrics (``{"hit_rate_5": 0.31, ...}``).
    bias_audit : dict
        The bias audit of this version (``{"passed": bool, "flags": [...], ...}``); empty when none
        was run, which the promotion rule treats as not passed.
    parent : str or None
        The version this one was retrained from (lineage).
    artifact : str or None
        File name of the model artifact inside the version folder.
    artifact_sha256 : str or None
        SHA-256 of the artifact, checked on load.
    reason : str
        Why it was trained (``manual``, ``schedule``, ``drift: PSI alert on hour`` ...).
    extra : dict
        Anything else the fitter records (grid, classes, schema fingerprint ...).
    """

    name: str
    version: str
    kind: str
    created_at: str
    training_window: dict[str, Any]
    params: dict[str, Any]
    data_fingerprint: str | None
    code_version: str
    metrics: dict[str, float] = field(default_factory=dict)
    bias_audit: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    artifact: str | None = None
    artifact_sha256: str | None = None
    reason: str = "manual"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, with the format tag."""
        return {"format": FORMAT, **dict(json_safe(asdict(self)))}

    @property
    def audit_passed(self) -> bool:
        """Whether this version's bias audit ran and passed."""
        return bool(self.bias_audit.get("passed", False))

    @classmethod
    def from_dict(cls, doc: Any, *, where: str = "manifest") -> Manifest:
        """Validate and build; raises :class:`RegistryError` naming ``where`` on any defect."""
        if not isinstance(doc, dict):
            raise RegistryError(f"{where}: not a JSON object")
        if doc.get("format") != FORMAT:
            raise RegistryError(f"{where}: not a crimelens model manifest (format {doc.get('format')!r})")
        required = {"name": str, "version": str, "kind": str, "created_at": str, "training_window": dict,
                    "params": dict, "code_version": str}
        for key, typ in required.items():
            if not isinstance(doc.get(key), typ):
                raise RegistryError(f"{where}: field {key!r} missing or not a {typ.__name__}")
        if doc["kind"] not in KINDS:
            raise RegistryError(f"{where}: kind must be one of {', '.join(KINDS)}, got {doc['kind']!r}")
        optional_dicts = ("metrics", "bias_audit", "extra")
        for key in optional_dicts:
            if not isinstance(doc.get(key, {}), dict):
                raise RegistryError(f"{where}: field {key!r} is not an object")
        metrics = doc.get("metrics", {})
        if any(v is not None and not isinstance(v, int | float) for v in metrics.values()):
            raise RegistryError(f"{where}: metrics must be numbers")
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in doc.items() if k in known})


def read_manifest(path: Path) -> Manifest:
    """Read and validate the manifest at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise RegistryError(f"no manifest at {path}") from exc
    except OSError as exc:
        raise RegistryError(f"cannot read manifest {path}: {exc.strerror}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegistryError(f"corrupt manifest {path}: {exc.msg} at line {exc.lineno}") from exc
    return Manifest.from_dict(doc, where=f"corrupt manifest {path}")
