"""A DuckDB store holding a small synthetic city (with alerts raised), shared by the report tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crimelens.store.duckdb import DuckDBStore


def _city() -> Any:
    synth = pytest.importorskip("crimelens.synth")
    return synth.generate_city(synth.CityConfig(n_incidents=12_000, days=400, seed=3, kind="realistic",
                                                size_m=12_000.0)).incidents


def load(store: DuckDBStore, frame: Any) -> None:
    from crimelens.schema import PERSONAL_SCHEMA, QUARANTINE_SCHEMA, to_arrow
    from crimelens.store.base import IngestReport

    bid = str(frame["batch_id"].iloc[0])
    with store.batch("synthetic", "memory", bid, bid) as w:
        w.add(to_arrow(frame), PERSONAL_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
        w.commit(IngestReport(source="synthetic", file="memory", sha256=bid, batch_id=bid, read=len(frame)))


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store file with the city and the alerts of one scan (so reports show open alerts)."""
    from crimelens.alerts import RuleBook, SpikeDetector
    from crimelens.notify.monitor import AlertMonitor

    path = tmp_path_factory.mktemp("reports") / "city.duckdb"
    store = DuckDBStore(path)
    load(store, _city())
    book = RuleBook.from_dict({"rule": [{"name": "any homicide", "type": "watch", "categories": ["homicide"],
                                         "days": 28}]})
    AlertMonitor(store, detector=SpikeDetector(stl_score=False, fdr=0.2), rules=book).scan(deliver=False)
    store.close()
    return path


@pytest.fixture
def store(store_path: Path) -> Iterator[DuckDBStore]:
    s = DuckDBStore(store_path, read_only=True)
    yield s
    s.close()
