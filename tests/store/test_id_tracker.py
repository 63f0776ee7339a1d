"""IdTracker: which ids a load routed before, exactly, until it saturates."""

import numpy as np
import pyarrow as pa

from crimelens.store.base import IdTracker


def test_record_reports_repeats_across_calls_and_nothing_else() -> None:
    rng = np.random.default_rng(3)
    t = IdTracker()
    routed: set[str] = set()
    for _ in range(30):
        ids = sorted({f"id-{v}" for v in rng.integers(0, 2_000, size=150)})
        seen, distinct = t.record(pa.array(ids))
        assert distinct
        assert seen.tolist() == [i in routed for i in ids]
        routed.update(ids)
    assert len(t) == len(routed)


def test_saturation_counts_everything_as_routed_and_frees_memory() -> None:
    t = IdTracker(limit=10)
    assert not t.record(pa.array([f"a{i}" for i in range(8)]))[0].any()
    first, _ = t.record(pa.array([f"b{i}" for i in range(5)]))  # 13 > 10: this answer is still exact
    assert not first.any() and t.saturated and len(t) == 0
    assert t.record(pa.array(["new", "a1"]))[0].all()


def test_repeats_within_one_call_are_not_distinct() -> None:
    t = IdTracker()
    seen, distinct = t.record(pa.array(["x", "y", "x"]))
    assert not distinct and not seen.any()
    assert t.record(pa.array(["x", "z"]))[0].tolist() == [True, False]
