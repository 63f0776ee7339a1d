"""Application-side encryption of the personal table's values on PostgreSQL (issue 17 part 4).

PostgreSQL has no per-database file encryption, so with a store key configured
(:mod:`crimelens.store.keys`) the store encrypts each value of ``incident_personal``'s ``suspect``,
``victim`` and ``narrative`` before it leaves the process, with AES-256-GCM (``cryptography``):

* the 256-bit key is derived from the store key with HKDF-SHA256 (fixed salt and purpose label),
  so the key itself never reaches the database;
* each value gets a fresh 96-bit random nonce (``os.urandom``);
* the associated data is ``source``, ``incident_id`` and the column name, so a ciphertext copied to
  another row or column fails authentication instead of decrypting there;
* the stored text is ``enc:v1:`` and the URL-safe base64 of nonce + ciphertext + tag; NULL stays
  NULL (erasure and "has a value" checks keep working in SQL).

Reading decrypts the same columns; a value without the prefix (written before a key was set) is
returned as it is, and a ciphertext met without a key, or with the wrong one, is a
:class:`~crimelens.exceptions.StoreError`.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable

import pandas as pd
import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crimelens.exceptions import StoreError
from crimelens.schema import PERSONAL_FIELDS
from crimelens.store.keys import KEY_ENV, KEY_FILE_ENV, StoreKey, store_key

PREFIX = "enc:v1:"
NONCE_BYTES = 12
_SALT = b"crimelens personal fields v1"
_INFO = b"incident_personal AES-256-GCM"


def _aad(source: str, incident_id: str, column: str) -> bytes:
    return "\x1f".join((source, incident_id, column)).encode("utf-8")


def is_encrypted(value: object) -> bool:
    """Whether ``value`` is a ciphertext written by :class:`FieldCipher`."""
    return isinstance(value, str) and value.startswith(PREFIX)


class FieldCipher:
    """AES-256-GCM over personal-field values, bound to their row and column."""

    def __init__(self, key: StoreKey) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SALT, info=_INFO).derive(key.secret.encode())
        self._aead = AESGCM(derived)
        self.origin = key.origin

    def encrypt(self, value: str, source: str, incident_id: str, column: str) -> str:
        """The stored text for ``value`` in ``column`` of the row (``source``, ``incident_id``)."""
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), _aad(source, incident_id, column))
        return PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")

    def decrypt(self, text: str, source: str, incident_id: str, column: str) -> str:
        """The value behind stored ``text`` (returned unchanged when it is not a ciphertext)."""
        if not is_encrypted(text):
            return text
        try:
            raw = base64.urlsafe_b64decode(text[len(PREFIX):])
            plain = self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(source, incident_id, column))
        except (InvalidTag, ValueError) as exc:
            raise StoreError(f"cannot decrypt incident_personal.{column}: wrong key (from {self.origin}) "
                             "or a value moved from another row") from exc
        return plain.decode("utf-8")

    def encrypt_table(self, personal: pa.Table, columns: Iterable[str] = PERSONAL_FIELDS) -> pa.Table:
        """``personal`` (with ``source`` and ``incident_id``) with ``columns`` encrypted."""
        if not personal.num_rows:
            return personal
        sources = personal.column("source").to_pylist()
        ids = personal.column("incident_id").to_pylist()
        for column in columns:
            if column not in personal.column_names:
                continue
            values = personal.column(column).to_pylist()
            sealed = [None if v is None else self.encrypt(str(v), str(s), str(i), column)
                      for v, s, i in zip(values, sources, ids, strict=True)]
            index = personal.column_names.index(column)
            personal = personal.set_column(index, column, pa.array(sealed, type=pa.string()))
        return personal


def cipher_from_env() -> FieldCipher | None:
    """The cipher for the configured store key, or None when no key is set."""
    key = store_key()
    return FieldCipher(key) if key is not None else None


def decrypt_frame(frame: pd.DataFrame, cipher: FieldCipher | None, sources: Iterable[object],
                  ids: Iterable[object], columns: Iterable[str] = PERSONAL_FIELDS) -> pd.DataFrame:
    """Decrypt ``columns`` of ``frame`` in place, row ``k`` bound to ``sources[k]``/``ids[k]``.

    Raises :class:`StoreError` when a ciphertext is met and ``cipher`` is None (no key set).
    """
    src, idx = [str(s) for s in sources], [str(i) for i in ids]
    for column in columns:
        if column not in frame.columns:
            continue
        values = frame[column].tolist()
        if not any(is_encrypted(v) for v in values):
            continue
        if cipher is None:
            raise StoreError(f"incident_personal holds encrypted values: set {KEY_ENV} or {KEY_FILE_ENV} "
                             "to read them")
        frame[column] = [cipher.decrypt(v, s, i, column) if is_encrypted(v) else v
                         for v, s, i in zip(values, src, idx, strict=True)]
    return frame
