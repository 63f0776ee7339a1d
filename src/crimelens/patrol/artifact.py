"""The ``rl`` policy as a versioned artifact: a directory with a manifest and the posterior arrays.

::

    policy/
      manifest.json   kind, format, version (content hash), created, city spec (grid, cells digest,
                      shifts, groups), simulator config, training settings and report, evaluation,
                      files with their SHA-256
      policy.npz      alpha, beta (Gamma posteriors) and the reported-crime estimate of the caps

The manifest is plain JSON with a content-addressed version, so a model registry can hold the
directory as it is. :func:`load_policy` checks the file hashes and refuses, with a message naming
the difference, a city whose grid, study-area cells or shift structure differ from the ones the
policy was trained for.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from crimelens.exceptions import InputError
from crimelens.patrol.schedulers import ThompsonPolicy
from crimelens.patrol.simulator import ShiftCity, SimConfig

KIND = "crimelens.patrol_policy"
FORMAT = 1
MANIFEST = "manifest.json"
ARRAYS = "policy.npz"


class PolicyMismatchError(InputError):
    """A policy was asked to plan for a city it was not trained for."""


def save_policy(policy: ThompsonPolicy, path: str | Path, *, training: dict[str, Any] | None = None,
                evaluation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``policy`` to the directory ``path`` (created; existing files replaced); return the manifest."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    arrays = root / ARRAYS
    reported = policy.reported if policy.reported is not None else np.zeros_like(policy.alpha)
    with arrays.open("wb") as fh:
        np.savez_compressed(fh, alpha=policy.alpha, beta=policy.beta, reported=reported, cells=policy.city.cells)
    digest = hashlib.sha256(arrays.read_bytes()).hexdigest()
    manifest = {
        "kind": KIND, "format": FORMAT, "version": digest[:12],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "method": "thompson-sampling combinatorial bandit",
        "city": policy.city.spec(), "config": asdict(policy.config),
        "tolerance": policy.tolerance, "training": training or {}, "evaluation": evaluation or {},
        "files": {ARRAYS: digest},
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_plain), encoding="utf-8")
    return manifest


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the policy directory ``path``."""
    p = Path(path) / MANIFEST
    try:
        doc: dict[str, Any] = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path} is not a patrol policy (no {MANIFEST})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{p} is not valid JSON: {exc}") from None
    if doc.get("kind") != KIND or doc.get("format") != FORMAT:
        raise InputError(f"{path} is not a patrol policy of format {FORMAT}")
    return doc


def check_city(manifest: dict[str, Any], city: ShiftCity) -> None:
    """Raise :class:`PolicyMismatchError` when ``city`` differs from the one the policy was trained for."""
    want, got = manifest["city"], city.spec()
    if want["shifts"] != got["shifts"]:
        raise PolicyMismatchError(f"the policy was trained for shifts {_shift_text(want['shifts'])}, "
                                  f"this city has {_shift_text(got['shifts'])}")
    if want["grid"] != got["grid"]:
        raise PolicyMismatchError(f"the policy was trained on grid {want['grid']}, this city's grid is {got['grid']}")
    if want["cells_digest"] != got["cells_digest"]:
        raise PolicyMismatchError(f"the policy was trained on {want['cells']} study-area cells "
                                  f"(digest {want['cells_digest']}), this city has {got['cells']} "
                                  f"(digest {got['cells_digest']})")
    if want["groups"] != got["groups"]:
        raise PolicyMismatchError("the policy was trained with other fairness groups")


def load_policy(path: str | Path, city: ShiftCity, *, units: int | None = None) -> ThompsonPolicy:
    """The policy in ``path`` for ``city`` (refused when the city or the unit count differ)."""
    root = Path(path)
    return policy_from(read_manifest(root), root / ARRAYS, city, units=units)


def policy_from(manifest: dict[str, Any], arrays: Path, city: ShiftCity, *, units: int | None = None) -> ThompsonPolicy:
    """The policy of ``manifest`` with its arrays in the file ``arrays`` (a directory's or a registry
    version's), refused when the city, the unit count or the file hash differ."""
    check_city(manifest, city)
    config = SimConfig(**manifest["config"])
    if units is not None and units != config.units:
        raise PolicyMismatchError(f"the policy was trained for {config.units} units, not {units}")
    data = arrays.read_bytes() if arrays.exists() else b""
    if hashlib.sha256(data).hexdigest() != manifest["files"].get(ARRAYS):
        raise InputError(f"{arrays} is missing or does not match its manifest hash")
    with np.load(arrays) as z:
        alpha, beta, reported = z["alpha"], z["beta"], z["reported"]
    if alpha.shape != (len(city.shifts), city.n):
        raise PolicyMismatchError(f"the policy arrays have shape {alpha.shape}, the city needs "
                                  f"{(len(city.shifts), city.n)}")
    return ThompsonPolicy(city, config, alpha.astype(np.float64), beta.astype(np.float64),
                          manifest.get("tolerance"), reported.astype(np.float64))


def trained_cells(path: str | Path) -> np.ndarray:
    """The study-area cell ids the policy in ``path`` (a policy directory or its arrays file) was trained on."""
    root = Path(path)
    arrays = root if root.is_file() else root / ARRAYS
    if not root.is_file():
        read_manifest(root)
    try:
        with np.load(arrays) as z:
            return np.asarray(z["cells"], dtype=np.int64)
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read {arrays}: {exc}") from None


def _shift_text(shifts: list[dict[str, Any]]) -> str:
    return ", ".join(f"{s['name']} {s['start_hour']:02d}-{s['end_hour']:02d}" for s in shifts)


def _plain(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON-able: {type(o).__name__}")
