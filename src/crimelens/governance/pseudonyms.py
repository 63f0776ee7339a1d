"""Keyed pseudonyms for personal fields (SECURITY.md PRV-04).

Names are replaced by HMAC-SHA-256 under a secret key kept outside the data (settings or
environment, never the repository), so the same person gets the same pseudonym across records
while a dictionary attack without the key finds nothing. Values are normalised (case, spacing)
before hashing so trivial spelling variants of the same string link.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

from crimelens.exceptions import InputError

MIN_KEY_BYTES = 16


def check_key(key: bytes) -> bytes:
    """Return ``key`` if it is long enough to be a secret, else raise :class:`InputError`."""
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
    return key


def pseudonym(value: str, key: bytes) -> str:
    """The HMAC-SHA-256 pseudonym of one value (``p`` + 32 hex digits)."""
    norm = " ".join(value.split()).casefold()
    return "p" + hmac.new(check_key(key), norm.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def pseudonymise(values: pd.Series, key: bytes) -> pd.Series:
    """Pseudonymise a column; nulls and blanks stay null."""
    check_key(key)
    s = values.astype("string").str.strip()
    out = pd.Series(None, index=values.index, dtype=object)
    present = s.notna() & (s != "")
    uniq = {v: pseudonym(v, key) for v in s[present].unique()}
    out[present] = s[present].map(uniq)
    return out
