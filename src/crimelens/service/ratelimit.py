"""Fixed-budget sliding-window rate limits per caller and bucket (SECURITY.md SEC-13).

Buckets: ``login`` (per source address), ``search`` and ``export`` (per user). The window is
one minute; a refused request gets 429 with ``Retry-After``. State is in memory: limits hold
per service process, which is the deployment unit (one writer per DuckDB store).
"""

from __future__ import annotations

import math
import threading
from collections import defaultdict, deque
from datetime import datetime

from crimelens.service.runtime import Clock

WINDOW_S = 60.0


class RateLimited(Exception):  # an HTTP condition, not a programming error
    """The caller exceeded a limit; ``retry_after`` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many requests")
        self.retry_after = retry_after


class RateLimiter:
    """Per-key sliding windows of request times."""

    def __init__(self, clock: Clock, limits: dict[str, int]) -> None:
        self.clock = clock
        self.limits = dict(limits)
        self._hits: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, bucket: str, key: str) -> None:
        """Count one request; raise :class:`RateLimited` when over the bucket's per-minute limit."""
        limit = self.limits[bucket]
        now = _seconds(self.clock())
        with self._lock:
            q = self._hits[(bucket, key)]
            while q and q[0] <= now - WINDOW_S:
                q.popleft()
            if len(q) >= limit:
                raise RateLimited(max(1, math.ceil(q[0] + WINDOW_S - now)))
            q.append(now)
            if len(self._hits) > 50_000:  # forget idle callers
                for k in [k for k, v in self._hits.items() if not v or v[-1] <= now - WINDOW_S]:
                    del self._hits[k]


def _seconds(t: datetime) -> float:
    return t.timestamp()
