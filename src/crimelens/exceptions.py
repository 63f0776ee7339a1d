"""Errors crimelens raises. Each is a :class:`CrimelensError` and the built-in it resembles."""

from __future__ import annotations


class CrimelensError(Exception):
    """Base class of every error crimelens raises on purpose."""


class InputError(CrimelensError, ValueError):
    """Input a user gave is unusable: a file, a mapping, an option value."""


class MappingError(InputError):
    """A mapping file is malformed or does not fit the data it is applied to."""


class SchemaError(CrimelensError, ValueError):
    """A table does not conform to the canonical incident schema."""


class StoreError(CrimelensError, RuntimeError):
    """The store cannot complete an operation."""


class StoreBusyError(StoreError):
    """The store cannot take the operation now (writer lock held, every connection busy): retry later."""


class NotFittedError(CrimelensError, AttributeError):
    """An estimator was used before ``fit``."""


class MissingExtraError(CrimelensError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


#: Packages that cannot be an extra's requirement (their metadata conflicts with our pins).
_SEPARATE_INSTALLS = {
    "statsforecast": "pip install --no-deps -r requirements/no-deps.txt (make install does this)",
}


def require_extra(module: str, extra: str) -> None:
    """Import ``module`` or raise :class:`MissingExtraError` naming ``pip install crimelens[extra]``."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        how = _SEPARATE_INSTALLS.get(module, f"pip install 'crimelens[{extra}]'")
        raise MissingExtraError(f"{module} is needed for this feature: {how}") from exc
