"""The store's encryption key, kept outside the data (issue 17 part 4).

The key comes from the environment, never from the store itself:

* ``CRIMELENS_DB_KEY`` — the key text; or
* ``CRIMELENS_DB_KEY_FILE`` — a file holding it (first line; a file readable by group or others
  is refused, as ``ssh`` refuses such a private key).

Setting both is an error (which one wins would be a guess). The DuckDB store hands the key to
DuckDB's database encryption (AES-GCM over every block of the file, the restricted
``incident_personal`` table included); the PostgreSQL store derives an AES-256-GCM key from it
(:mod:`crimelens.store.fieldcrypt`) for the personal table's values.

``CRIMELENS_DB_CRYPTO`` picks DuckDB's cipher implementation for *writing*: ``openssl`` (the
default) needs DuckDB's ``httpfs`` extension, whose OpenSSL has a secure random source for the
nonces; ``mbedtls-unsafe`` accepts DuckDB's built-in implementation, which DuckDB itself calls not
securely encrypted (its random source is not cryptographic) — for machines without the extension,
such as offline test runs. Reading an encrypted file works with either.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from crimelens.exceptions import InputError

KEY_ENV = "CRIMELENS_DB_KEY"
KEY_FILE_ENV = "CRIMELENS_DB_KEY_FILE"
CRYPTO_ENV = "CRIMELENS_DB_CRYPTO"
MIN_KEY_CHARS = 16
Crypto = Literal["openssl", "mbedtls-unsafe"]
CRYPTOS: tuple[str, ...] = ("openssl", "mbedtls-unsafe")


@dataclass(frozen=True)
class StoreKey:
    """A store key and where it came from (``origin`` names the variable, never the value)."""

    secret: str
    origin: str

    def __repr__(self) -> str:
        return f"StoreKey(origin={self.origin!r})"


def _read_key_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{KEY_FILE_ENV}: cannot read {path}: {exc.strerror or type(exc).__name__}") from exc
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{KEY_FILE_ENV}: {path} is readable by group or others; chmod 600 it")
    lines = text.splitlines()
    return lines[0].strip() if lines else ""


def store_key(environ: dict[str, str] | None = None) -> StoreKey | None:
    """The configured store key, or ``None`` when neither variable is set.

    Raises
    ------
    InputError
        When both variables are set, the key file is unreadable or too open, or the key is shorter
        than :data:`MIN_KEY_CHARS` characters.
    """
    env = os.environ if environ is None else environ
    text, file = env.get(KEY_ENV) or None, env.get(KEY_FILE_ENV) or None
    if text is not None and file is not None:
        raise InputError(f"set {KEY_ENV} or {KEY_FILE_ENV}, not both")
    if text is None and file is None:
        return None
    origin = KEY_ENV if text is not None else KEY_FILE_ENV
    secret = text if text is not None else _read_key_file(Path(file or ""))
    if len(secret) < MIN_KEY_CHARS:
        raise InputError(f"{origin}: the store key must be at least {MIN_KEY_CHARS} characters")
    return StoreKey(secret, origin)


def crypto_choice(environ: dict[str, str] | None = None) -> Crypto:
    """DuckDB's cipher implementation for writing (``CRIMELENS_DB_CRYPTO``, default ``openssl``)."""
    env = os.environ if environ is None else environ
    value = (env.get(CRYPTO_ENV) or "openssl").strip().lower()
    if value not in CRYPTOS:
        raise InputError(f"{CRYPTO_ENV} must be {' or '.join(CRYPTOS)}, got {value!r}")
    return "openssl" if value == "openssl" else "mbedtls-unsafe"
