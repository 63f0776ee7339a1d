"""A model registry kept in a directory you pass in.

Layout::

    ROOT/<name>/v1/manifest.json      one folder per version: manifest + artifact
    ROOT/<name>/v1/model.pkl
    ROOT/<name>/aliases.json          {"production": "v2", "candidate": "v3", "history": [...]}

Every write is atomic: a file is written to a temporary sibling, flushed, and renamed over the
old one; a new version is assembled in a temporary folder and renamed into place, so a reader (or
a crash) sees either the whole version or none of it. Reading validates every manifest it
touches; a corrupt one raises :class:`RegistryError` and nothing is changed. The history in
``aliases.json`` records every alias change (who, when, why) and is what :meth:`rollback` uses.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from crimelens.registry.manifest import Manifest, RegistryError, read_manifest
from crimelens.registry.promotion import PromotionDecision, PromotionRule, decide

ALIASES: Final = ("production", "candidate")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_VERSION = re.compile(r"^v(\d+)$")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary sibling and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            Path(tmp).unlink()
        raise


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ModelRegistry:
    """Versions, aliases and promotions of models under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading -----------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        if not _NAME.match(name):
            raise RegistryError(f"invalid model name {name!r} (letters, digits, . _ - only)")
        return self.root / name

    def names(self) -> list[str]:
        """Registered model names."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name))

    def _numbers(self, name: str) -> list[int]:
        d = self._dir(name)
        if not d.is_dir():
            return []
        return sorted(int(m.group(1)) for p in d.iterdir() if p.is_dir() and (m := _VERSION.match(p.name)))

    def versions(self, name: str) -> list[Manifest]:
        """Every version of ``name``, oldest first (raises on a corrupt manifest)."""
        return [self._read(name, f"v{n}") for n in self._numbers(name)]

    def _read(self, name: str, version: str) -> Manifest:
        m = read_manifest(self._dir(name) / version / "manifest.json")
        if m.name != name or m.version != version:
            raise RegistryError(f"corrupt manifest {self._dir(name) / version / 'manifest.json'}: it names "
                                f"{m.name}/{m.version}")
        return m

    def aliases(self, name: str) -> dict[str, str]:
        """``{"production": "v2", "candidate": "v3"}`` (only the aliases set)."""
        doc = self._aliases_doc(name)
        return {a: str(doc[a]) for a in ALIASES if doc.get(a)}

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every alias change of ``name``, oldest first."""
        return list(self._aliases_doc(name).get("history", []))

    def _aliases_doc(self, name: str) -> dict[str, Any]:
        path = self._dir(name) / "aliases.json"
        if not path.exists():
            return {"history": []}
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise RegistryError(f"corrupt alias file {path}: {type(exc).__name__}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("history", []), list):
            raise RegistryError(f"corrupt alias file {path}: not an alias document")
        for a in ALIASES:
            if doc.get(a) is not None and not (isinstance(doc[a], str) and _VERSION.match(doc[a])):
                raise RegistryError(f"corrupt alias file {path}: {a} is {doc[a]!r}")
        return doc

    def get(self, name: str, ref: str = "production") -> Manifest:
        """The version ``ref`` of ``name``: a version (``v3``) or an alias (``production``)."""
        if ref in ALIASES:
            version = self.aliases(name).get(ref)
            if version is None:
                raise RegistryError(f"{name} has no {ref} version")
            ref = version
        if not _VERSION.match(ref):
            raise RegistryError(f"{ref!r} is neither a version (v1, v2 ...) nor an alias ({', '.join(ALIASES)})")
        if not (self._dir(name) / ref).is_dir():
            raise RegistryError(f"{name} has no version {ref}")
        return self._read(name, ref)

    def artifact(self, manifest: Manifest) -> Path:
        """The artifact file of ``manifest``, after checking its SHA-256."""
        if manifest.artifact is None:
            raise RegistryError(f"{manifest.name}/{manifest.version} has no artifact")
        path = self._dir(manifest.name) / manifest.version / manifest.artifact
        if not path.is_file():
            raise RegistryError(f"artifact missing: {path}")
        if manifest.artifact_sha256 and sha256_file(path) != manifest.artifact_sha256:
            raise RegistryError(f"artifact {path} does not match its manifest's SHA-256")
        return path

    def lineage(self, name: str, ref: str = "production") -> list[Manifest]:
        """``ref`` and its ancestors (parent, grandparent ...), newest first."""
        out = [self.get(name, ref)]
        seen = {out[0].version}
        while out[-1].parent and out[-1].parent not in seen:
            seen.add(out[-1].parent)
            out.append(self.get(name, out[-1].parent))
        return out

    # -- writing -----------------------------------------------------------------------
    def register(self, draft: Manifest, artifact: Path | None = None, *, alias: str | None = "candidate",
                 by: str = "system") -> Manifest:
        """Add ``draft`` as the next version of ``draft.name`` (its ``version`` and ``created_at`` are
        assigned here), copy ``artifact`` beside the manifest and point ``alias`` at it."""
        d = self._dir(draft.name)
        d.mkdir(parents=True, exist_ok=True)
        self._aliases_doc(draft.name)  # refuse to add to a registry whose aliases are damaged
        for _ in range(20):
            number = (self._numbers(draft.name) or [0])[-1] + 1
            version = f"v{number}"
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=d))
            try:
                fields: dict[str, Any] = {"version": version, "created_at": draft.created_at or _now()}
                if artifact is not None:
                    target = tmp / (draft.artifact or artifact.name)
                    shutil.copyfile(artifact, target)
                    fields.update(artifact=target.name, artifact_sha256=sha256_file(target))
                manifest = replace(draft, **fields)
                atomic_write(tmp / "manifest.json", json.dumps(manifest.to_dict(), indent=2).encode())
                tmp.rename(d / version)  # fails when another writer took this number
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if (d / version).exists():
                    continue
                raise
            if alias is not None:
                self.set_alias(draft.name, alias, version, by=by, note=f"registered ({draft.reason})")
            return manifest
        raise RegistryError(f"could not allocate a version of {draft.name}: too many concurrent writers")

    def set_alias(self, name: str, alias: str, version: str | None, *, by: str = "system", note: str = "") -> None:
        """Point ``alias`` at ``version`` (None clears it), recording the change in the history."""
        if alias not in ALIASES:
            raise RegistryError(f"unknown alias {alias!r}; use {', '.join(ALIASES)}")
        if version is not None:
            self.get(name, version)  # exists and reads
        doc = self._aliases_doc(name)
        doc.setdefault("history", []).append({"at": _now(), "alias": alias, "from": doc.get(alias),
                                              "to": version, "by": by, "note": note})
        doc[alias] = version
        atomic_write(self._dir(name) / "aliases.json", json.dumps(doc, indent=2).encode())

    def promote(self, name: str, ref: str = "candidate", *, rule: PromotionRule | None = None,
                force: bool = False, by: str = "system",
                production_metrics: dict[str, float] | None = None) -> PromotionDecision:
        """Make ``ref`` production when ``rule`` allows it (or ``force``); returns the decision.

        ``production_metrics``, when given, are production's scores on the candidate's backtest
        windows (rescored by the caller), compared instead of those in its manifest, which were
        measured on older windows. A refused promotion changes nothing. A promoted candidate is
        no longer ``candidate``.
        """
        cand = self.get(name, ref)
        current = self.aliases(name).get("production")
        prod = self.get(name, current) if current else None
        if prod is not None and production_metrics is not None:
            prod = replace(prod, metrics=dict(production_metrics))
        decision = decide(rule or PromotionRule(), cand, prod)
        if force and not decision.promote and (prod is None or prod.version != cand.version):
            decision = replace(decision, promote=True, reasons=[*decision.reasons, f"forced by {by}"])
        if decision.promote:
            self.set_alias(name, "production", cand.version, by=by, note="; ".join(decision.reasons))
            if self.aliases(name).get("candidate") == cand.version:
                self.set_alias(name, "candidate", None, by=by, note="promoted")
        return decision

    def rollback(self, name: str, *, by: str = "system") -> str:
        """Point production back at the version it held before the current one; returns that version."""
        current = self.aliases(name).get("production")
        if current is None:
            raise RegistryError(f"{name} has no production version to roll back")
        previous = [h["from"] for h in self.history(name)
                    if h.get("alias") == "production" and h.get("to") == current and h.get("from")]
        if not previous:
            raise RegistryError(f"{name}: production {current} has no earlier production version")
        target = str(previous[-1])
        self.set_alias(name, "production", target, by=by, note=f"rollback from {current}")
        return target
