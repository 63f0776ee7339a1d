"""Read ahead: pull the next items of an iterator in a background thread.

Parsing a CSV block (Arrow, outside the GIL) can then overlap with cleaning the previous one.
At most ``depth`` items wait in the queue, so memory stays bounded. Errors raised by the
source iterator reach the consumer at the point where it would have met them; leaving the
``with`` block early stops the thread and closes the source.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_SECONDS = 0.05


class ReadAhead(Generic[T]):
    """Iterate over ``items`` with up to ``depth`` of them produced ahead in a thread.

    Use it as a context manager; iterating outside a ``with`` block raises ``RuntimeError``.
    """

    def __init__(self, items: Iterable[T], *, depth: int = 1, name: str = "crimelens-read") -> None:
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self._items = items
        self._queue: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name=name, daemon=True)
        self._started = False

    def _put(self, kind: str, value: object) -> bool:
        """Queue one message unless the consumer has gone; False when it has."""
        while not self._stop.is_set():
            try:
                self._queue.put((kind, value), timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        iterator = iter(self._items)
        try:
            for item in iterator:
                if not self._put("item", item):
                    return
            self._put("end", None)
        except BaseException as exc:  # noqa: BLE001 -- handed to the consumer, re-raised there
            self._put("error", exc)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's own clean-up (its open file) runs in this thread

    def __enter__(self) -> ReadAhead[T]:
        self._thread.start()
        self._started = True
        return self

    def __iter__(self) -> Iterator[T]:
        if not self._started:
            raise RuntimeError("ReadAhead must be used in a `with` block")
        while True:
            kind, value = self._queue.get()
            if kind == "end":
                return
            if kind == "error":
                assert isinstance(value, BaseException)
                raise value
            yield value  # type: ignore[misc]  # items are the source's own T

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()
