"""crimelens: police incident records to decisions.

The public API is the core library: canonical schema and taxonomy, readers and mapping files,
cleaning, the synthetic city, analyses and forecasters. Adapters (store, CLI, service) are
imported from their own subpackages.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("crimelens")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

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
