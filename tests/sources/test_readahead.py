"""ReadAhead: the same items in the same order, errors where they happened, a clean early exit."""

import threading
from collections.abc import Iterator

import pytest

from crimelens.sources.readahead import ReadAhead


def test_items_arrive_in_order_and_complete() -> None:
    with ReadAhead(iter(range(1000)), depth=2) as items:
        assert list(items) == list(range(1000))


def test_an_error_in_the_source_reaches_the_consumer_after_the_items_before_it() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("bad block")

    got: list[int] = []
    with pytest.raises(ValueError, match="bad block"), ReadAhead(source()) as items:
        for i in items:
            got.append(i)
    assert got == [1, 2]


def test_leaving_early_stops_the_thread_and_closes_the_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    before = threading.active_count()
    with ReadAhead(endless()) as items:
        for i in items:
            if i == 5:
                break
    assert closed.wait(5)
    assert threading.active_count() == before


def test_iterating_outside_a_with_block_is_refused() -> None:
    with pytest.raises(RuntimeError, match="with"):
        list(ReadAhead(iter([1])))
    with pytest.raises(ValueError, match="depth"):
        ReadAhead(iter([1]), depth=0)
