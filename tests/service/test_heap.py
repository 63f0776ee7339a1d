"""service/heap.py: start-up garbage is collected, the survivors are frozen out of later scans."""
from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from crimelens.service import heap


class _Node:
    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    gc.disable()  # no automatic collection between the steps the test checks
    yield
    gc.enable()
    gc.unfreeze()


def test_settle_collects_garbage_then_freezes_the_rest(unfrozen: None) -> None:
    kept = _Node()
    dropped = _Node()
    gone = weakref.ref(dropped)
    del dropped  # a reference cycle: only the collector frees it
    assert gone() is not None
    frozen = heap.settle()
    assert gone() is None  # collected, not frozen forever
    assert frozen == gc.get_freeze_count() > 1000
    assert not any(o is kept for o in gc.get_objects())  # out of every generation a collection walks
    gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())
