"""Erasure and retention of incident personal data in a store (SECURITY.md PRV-06).

Personal data lives in four places, and both operations clear all of them in one transaction:

* ``incident_personal`` (restricted originals: suspect, victim, narrative) -- values set to NULL,
  rows with nothing left deleted;
* ``incidents.suspect_ref`` / ``victim_ref`` (keyed pseudonyms) -- set to NULL;
* ``quarantine`` -- rejected rows whose raw values carry the incident's id or the person's name
  are deleted;
* caches and rollups -- the runtime's data generation is bumped (on PostgreSQL every worker
  notices through ``svc_state``).

Erased incidents are listed in ``svc_training_exclusions``: the next retraining drops them (see
:func:`training_exclusions`). Each erasure is written to ``svc_erasures`` with ids only (incident
keys and pseudonyms, never names) and to the audit chain (``erasure.person`` /
``erasure.incident`` / ``retention.enforce``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from crimelens.app_tables import ERASURE_DDL
from crimelens.exceptions import InputError
from crimelens.governance.retention import ROLES, RetentionPolicy, cutoffs, due_fields
from crimelens.service import metrics as service_metrics
from crimelens.service.audit import AuditContext, AuditLog
from crimelens.service.runtime import Runtime, Transaction
from crimelens.store.fieldcrypt import FieldCipher, cipher_from_env, decrypt_frame, is_encrypted

_SEP = "\x1f"
_CHUNK = 500
Key = tuple[str, str]


def create_tables(rt: Runtime) -> None:
    """Create the erasure tables if absent."""
    with rt.transaction() as tx:
        tx.lock("service-tables")
        for ddl in ERASURE_DDL:
            tx.execute(ddl)


def _chunks(keys: Sequence[Key]) -> Iterable[list[str]]:
    flat = [f"{s}{_SEP}{i}" for s, i in keys]
    for k in range(0, len(flat), _CHUNK):
        yield flat[k:k + _CHUNK]


def _in(column_expr: str, n: int) -> str:
    return f"{column_expr} IN ({', '.join('?' * n)})"


KEY_EXPR = f"(source || '{_SEP}' || incident_id)"


class Eraser:
    """Erasure and retention on one runtime's store."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        create_tables(rt)
        self.audit = AuditLog(rt)
        self._cipher: FieldCipher | None = None

    # -- finding ---------------------------------------------------------------------------
    def resolve_incidents(self, refs: Sequence[str]) -> list[Key]:
        """Incident keys for ``SOURCE:ID`` or bare ``ID`` references; unknown ones are an error."""
        keys: list[Key] = []
        for ref in refs:
            found = self.rt.query("SELECT source, incident_id FROM incidents WHERE incident_id = ?", [ref])
            if not found and ":" in ref:
                src, iid = ref.split(":", 1)
                found = self.rt.query("SELECT source, incident_id FROM incidents WHERE source = ? AND "
                                      "incident_id = ?", [src, iid])
            if not found:
                raise InputError(f"no incident {ref!r} in the store")
            keys += [(str(s), str(i)) for s, i in found]
        return sorted(set(keys))

    def resolve_person(self, pseudonym: str) -> list[tuple[str, str, str]]:
        """``(source, incident_id, role)`` of every field holding ``pseudonym``."""
        rows = self.rt.query("SELECT source, incident_id, suspect_ref = ?, victim_ref = ? FROM incidents "
                             "WHERE suspect_ref = ? OR victim_ref = ?", [pseudonym] * 4)
        out = []
        for s, i, sus, vic in rows:
            out += [(str(s), str(i), "suspect")] * bool(sus) + [(str(s), str(i), "victim")] * bool(vic)
        return out

    # -- clearing --------------------------------------------------------------------------
    def _clear(self, tx: Transaction, keys: Sequence[Key], roles: Sequence[str]) -> dict[str, int]:
        """Null ``roles`` of ``keys`` in both tables; returns counts."""
        fields = pseud = 0
        names: set[str] = set()
        for chunk in _chunks(keys):
            where = _in(KEY_EXPR, len(chunk))
            for role in roles:
                original, *refs = ROLES[role]
                if role != "narrative":
                    got = tx.execute(f"SELECT source, incident_id, {original} FROM incident_personal "  # noqa: S608 -- identifiers from fixed role columns; values bound
                                     f"WHERE {where} AND {original} IS NOT NULL", chunk)
                    names |= self._plain_names(got, original)
                n = tx.execute(f"SELECT count(*) FROM incident_personal WHERE {where} AND {original} IS NOT NULL",  # noqa: S608 -- as above
                               chunk)[0][0]
                fields += int(n)
                tx.execute(f"UPDATE incident_personal SET {original} = NULL WHERE {where}", chunk)  # noqa: S608 -- as above
                for ref in refs:
                    m = tx.execute(f"SELECT count(*) FROM incidents WHERE {where} AND {ref} IS NOT NULL", chunk)  # noqa: S608 -- as above
                    pseud += int(m[0][0])
                    tx.execute(f"UPDATE incidents SET {ref} = NULL WHERE {where}", chunk)  # noqa: S608 -- as above
            tx.execute(f"DELETE FROM incident_personal WHERE {where} AND suspect IS NULL AND victim IS NULL "  # noqa: S608 -- fixed SQL; values bound
                       "AND narrative IS NULL", chunk)
        quarantined = self._clear_quarantine(tx, keys, names)
        return {"personal_fields": fields, "pseudonyms_cleared": pseud, "quarantine_rows": quarantined}

    def _plain_names(self, rows: Sequence[Sequence[Any]], column: str) -> set[str]:
        """The names in ``(source, incident_id, value)`` rows, decrypted where the store encrypts
        them (PostgreSQL with a store key, :mod:`crimelens.store.fieldcrypt`): the quarantine holds
        rejected rows in clear, so matching needs the plain value. A ciphertext without the key, or
        with the wrong one, is a :class:`~crimelens.exceptions.StoreError` and the transaction rolls
        back (nothing erased, nothing logged)."""
        if any(is_encrypted(r[2]) for r in rows) and self._cipher is None:
            self._cipher = cipher_from_env()
        frame = pd.DataFrame({column: [r[2] for r in rows]})
        frame = decrypt_frame(frame, self._cipher, [r[0] for r in rows], [r[1] for r in rows], [column])
        return {str(v) for v in frame[column] if v}

    def _clear_quarantine(self, tx: Transaction, keys: Sequence[Key], names: Iterable[str]) -> int:
        """Delete rejected rows of the same source carrying an erased incident's id (as a JSON
        string value), and rejected rows anywhere carrying an erased person's name."""
        n = 0
        needles = [("source = ? AND ", [s], json.dumps(str(i))) for s, i in sorted(set(keys))]
        needles += [("", [], str(x)) for x in sorted(set(names)) if len(str(x)) >= 3]
        for cond, params, needle in needles:
            where = f"{cond}strpos(raw, ?) > 0"
            got = tx.execute(f"SELECT count(*) FROM quarantine WHERE {where}", [*params, needle])  # noqa: S608 -- fixed SQL; values bound
            if got[0][0]:
                n += int(got[0][0])
                tx.execute(f"DELETE FROM quarantine WHERE {where}", [*params, needle])  # noqa: S608 -- fixed SQL; values bound
        return n

    def _log(self, tx: Transaction, kind: str, actor: str, keys: Sequence[Key], extra_ids: Sequence[str]) -> str:
        eid = uuid.uuid4().hex
        now = self.rt.clock()
        ids = {"incidents": [f"{s}:{i}" for s, i in keys], "pseudonyms": list(extra_ids)}
        tx.execute("INSERT INTO svc_erasures VALUES (?, ?, ?, ?, ?, ?)",
                   [eid, now, kind, actor, len(keys), json.dumps(ids)])
        for s, i in keys:
            tx.execute("INSERT INTO svc_training_exclusions VALUES (?, ?, ?, ?)", [s, i, eid, now])
        return eid

    @contextmanager
    def _failure_audited(self, event: str, actor: str, reason: str) -> Iterator[None]:
        """Run an erasure; if it fails (and so rolls back), record the failed attempt in the audit
        log, in a transaction of its own, and re-raise: an auditor sees every attempt, and
        ``/metrics`` counts the failures from the log (``crimelens_erasure_attempts``). Only the
        error's class is logged, never values."""
        try:
            yield
        except Exception as exc:
            service_metrics.erasure_failed(event.split(".", 1)[1])
            self.audit.record(AuditContext(username=actor), event, "failed", component="governance",
                              reason=reason[:500] or None, detail=json.dumps({"error": type(exc).__name__}))
            raise

    # -- the two operations ----------------------------------------------------------------
    def erase(self, *, incidents: Sequence[str] = (), persons: Sequence[str] = (), reason: str = "",
              actor: str = "system") -> dict[str, Any]:
        """Erase every personal field of ``incidents`` and every field holding one of ``persons``."""
        keys = self.resolve_incidents(incidents) if incidents else []
        person_fields = [f for p in persons for f in self.resolve_person(p)]
        if persons and not person_fields:
            raise InputError("no incident holds that pseudonym")
        counts = {"personal_fields": 0, "pseudonyms_cleared": 0, "quarantine_rows": 0}
        kind = "person" if persons and not incidents else "incident" if not persons else "mixed"
        with self._failure_audited(f"erasure.{kind}", actor, reason), self.rt.transaction() as tx:
            if keys:
                for k, v in self._clear(tx, keys, list(ROLES)).items():
                    counts[k] += v
            for role in ("suspect", "victim"):
                mine = sorted({(s, i) for s, i, r in person_fields if r == role})
                if mine:
                    for k, v in self._clear(tx, mine, [role, "narrative"]).items():
                        counts[k] += v
            every = sorted(set(keys) | {(s, i) for s, i, _ in person_fields})
            eid = self._log(tx, kind, actor, every, list(persons))
            seq = self.audit.record(AuditContext(username=actor), f"erasure.{kind}", "ok", component="governance",
                                    object_id=eid, reason=reason[:500],
                                    detail=json.dumps({"incidents": [f"{s}:{i}" for s, i in every][:50],
                                                       "pseudonyms": list(persons)}))
        self.rt.bump()
        service_metrics.erasure_done(kind)
        return {"erasure_id": eid, "incidents": len(every), "personal_rows": counts["personal_fields"],
                **{k: v for k, v in counts.items() if k != "personal_fields"},
                "training_exclusions": len(every), "audit_seq": seq}

    def personal_records(self) -> pd.DataFrame:
        """Incidents holding any personal field: source, incident_id, category, occurred_at."""
        rows = self.rt.query(
            "SELECT i.source, i.incident_id, i.category, i.occurred_at FROM incidents i LEFT JOIN "
            "incident_personal p ON p.source = i.source AND p.incident_id = i.incident_id WHERE "
            "i.suspect_ref IS NOT NULL OR i.victim_ref IS NOT NULL OR p.suspect IS NOT NULL OR "
            "p.victim IS NOT NULL OR p.narrative IS NOT NULL")
        return pd.DataFrame(rows, columns=["source", "incident_id", "category", "occurred_at"])

    def enforce(self, policy: RetentionPolicy, *, apply: bool = True, actor: str = "system") -> dict[str, Any]:
        """Remove (or, with ``apply=False``, only count) the personal fields past their retention."""
        now = self.rt.clock()
        records = self.personal_records()
        due = due_fields(records, policy, now)
        out: dict[str, Any] = {"at": now.isoformat(), "incidents": int(due[["source", "incident_id"]]
                                                                       .drop_duplicates().shape[0]),
                               "fields": len(due), "by_role": {r: int((due["role"] == r).sum()) for r in ROLES},
                               "cutoffs": cutoffs(policy, sorted(map(str, records["category"].dropna().unique())),
                                                  now),
                               "applied": apply}
        if not apply or due.empty:
            return out
        with self._failure_audited("retention.enforce", actor, ""), self.rt.transaction() as tx:
            for role in ROLES:
                sel = due[due["role"] == role]
                keys = list(zip(sel["source"].astype(str), sel["incident_id"].astype(str), strict=True))
                if keys:
                    self._clear(tx, keys, [role])
            every = sorted(set(zip(due["source"].astype(str), due["incident_id"].astype(str), strict=True)))
            eid = self._log(tx, "retention", actor, every, [])
            self.audit.record(AuditContext(username=actor), "retention.enforce", "ok", component="governance",
                              object_id=eid, detail=json.dumps({"fields": len(due), "incidents": len(every)}))
        self.rt.bump()
        service_metrics.erasure_done("retention")
        out["erasure_id"] = eid
        return out


def training_exclusions(rt: Runtime) -> set[Key]:
    """Incidents erased since they were stored: retraining leaves them out."""
    create_tables(rt)
    return {(str(s), str(i)) for s, i in rt.query("SELECT source, incident_id FROM svc_training_exclusions")}


def load_policy(path: Path | None) -> RetentionPolicy:
    """The schedule in ``path`` (TOML), or the built-in default."""
    if path is None:
        return RetentionPolicy()
    if not path.is_file():
        raise InputError(f"no retention schedule at {path}")
    return RetentionPolicy.from_toml(path.read_text(encoding="utf-8"))


def _runtime(url: str) -> Runtime:
    from crimelens.settings import Settings

    return Runtime(Settings(db=url))


def erase_personal(url: str, *, incidents: Sequence[str], persons: Sequence[str], reason: str,
                   actor: str) -> dict[str, Any]:
    """``crimelens erase``: open the store at ``url``, erase, close."""
    rt = _runtime(url)
    try:
        return Eraser(rt).erase(incidents=incidents, persons=persons, reason=reason, actor=actor)
    finally:
        rt.close()


def enforce_retention(url: str, *, policy_file: Path | None, apply: bool, actor: str) -> dict[str, Any]:
    """``crimelens retention``: report or apply the schedule on the store at ``url``."""
    policy = load_policy(policy_file)
    rt = _runtime(url)
    try:
        return Eraser(rt).enforce(policy, apply=apply, actor=actor)
    finally:
        rt.close()
