"""Settings: one typed object, built only at the edges (CLI entry point, service factory).

Values come from the environment (``CRIMELENS_*``) or a ``.env`` file; secrets are never read
from the repository. The pseudonym key comes from ``CRIMELENS_PSEUDONYM_KEY`` or, failing
that, from a key file outside the data (created with mode 0600 on first use).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """crimelens settings (environment variables prefixed ``CRIMELENS_``)."""

    model_config = SettingsConfigDict(env_prefix="CRIMELENS_", env_file=".env", extra="ignore")

    db: str = "crimelens.duckdb"
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path = Field(default_factory=lambda: Path.home() / ".config" / "crimelens" / "pseudonym.key")

    def key_bytes(self) -> bytes:
        """The pseudonym key: from the environment, else from the key file (created if absent)."""
        if self.pseudonym_key is not None:
            return self.pseudonym_key.get_secret_value().encode("utf-8")
        path = self.pseudonym_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        return path.read_text(encoding="utf-8").strip().encode("utf-8")
