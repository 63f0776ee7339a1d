"""crimelens: police incident records to decisions.

The public API is the core library: canonical schema and taxonomy, readers and mapping files,
cleaning, the synthetic city, analyses and forecasters. Adapters (store, CLI, service) are
imported from their own subpackages.
"""

from __future__ import annotations

from crimelens.exceptions import (
    CrimelensError,
    InputError,
    MappingError,
    NotFittedError,
    SchemaError,
    StoreBusyError,
    StoreError,
)
from crimelens.schema import INCIDENT_COLUMNS, INCIDENT_SCHEMA, validate


def __getattr__(name: str) -> str:
    """``__version__``, looked up on first use (scanning installed packages costs ~80 ms at import)."""
    if name != "__version__":
        raise AttributeError(f"module 'crimelens' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crimelens")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.0.0"

__all__ = [
    "INCIDENT_COLUMNS",
    "INCIDENT_SCHEMA",
    "CrimelensError",
    "InputError",
    "MappingError",
    "NotFittedError",
    "SchemaError",
    "StoreBusyError",
    "StoreError",
    "__version__",
    "validate",
]
