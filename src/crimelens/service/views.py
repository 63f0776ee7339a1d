"""Mixins that make a store view the service's: counts from the runtime's rollup, statements under a lock.

They know the runtime only through :class:`RollupSource`, so the store adapters built on them
(:mod:`crimelens.service.pgconn`) do not import the runtime that creates them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Protocol

import pandas as pd

from crimelens.filters import IncidentFilter
from crimelens.service.rollup import CountsRollup


class RollupSource(Protocol):
    """What a view needs of the runtime (:class:`crimelens.service.runtime.Runtime`)."""

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """A cached value, computed once per data generation."""

    def rollup(self, zone: str) -> CountsRollup:
        """The hourly counts rollup in time zone ``zone``."""


class RollupCounts:
    """Mixin for a store view: with a runtime, ``counts`` is answered from the runtime's hourly
    rollup when it can be (:mod:`crimelens.service.rollup`), else by the store."""

    runtime: RollupSource | None

    def counts(
        self, by: Sequence[str], flt: IncidentFilter | None = None, *, tz: str | None = None
    ) -> pd.DataFrame:
        """Counts grouped by ``by``: from the rollup when it answers exactly, else from the store."""
        flt = flt or IncidentFilter()
        if self.runtime is not None:
            finder = super().timezone  # type: ignore[misc]
            zone = tz or self.runtime.cached(("timezone", flt.sources), lambda: finder(flt.sources))
            out = self.runtime.rollup(zone).counts(by, flt)
            if out is not None:
                out.attrs["timezone"] = zone
                return out
        got: pd.DataFrame = super().counts(by, flt, tz=tz)  # type: ignore[misc]
        return got


class Locked:
    """Mixin: a store's read methods, each statement under the runtime's write lock."""

    lock: threading.RLock

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        with self.lock:
            out: pd.DataFrame = super().execute(sql, params)  # type: ignore[misc]
            return out

    def incidents(self, *args: Any, **kw: Any) -> pd.DataFrame:
        with self.lock:
            out: pd.DataFrame = super().incidents(*args, **kw)  # type: ignore[misc]
            return out

    def counts(self, *args: Any, **kw: Any) -> pd.DataFrame:
        with self.lock:
            out: pd.DataFrame = super().counts(*args, **kw)  # type: ignore[misc]
            return out

    def timezone(self, sources: Sequence[str] = ()) -> str:
        with self.lock:
            out: str = super().timezone(sources)  # type: ignore[misc]
            return out

    def close(self) -> None:  # the runtime owns the cursor
        return None
