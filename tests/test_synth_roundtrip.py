"""The synthetic city through the real pipeline: a dirty Chicago-format file is ingested and every
injected flaw is found exactly where it was planted; clean rows keep their canonical categories."""

from pathlib import Path

import pandas as pd

from crimelens.filters import IncidentFilter
from crimelens.ingest import ingest_file
from crimelens.sources.mapping import load_preset
from crimelens.synth import CityConfig, DirtConfig, generate_city, write_portal
from tests.conftest import TEST_KEY


def test_dirty_portal_file_is_accounted_for_exactly(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    city = generate_city(CityConfig(n_incidents=6_000, days=200, seed=11, size_m=12_000))
    path = tmp_path / "city.csv"
    dirt = write_portal(city, path, fmt="chicago", dirt=DirtConfig(seed=5))
    r = ingest_file(store, path, key=TEST_KEY, mapping=load_preset("chicago"), source="synthetic",
                    now=pd.Timestamp("2030-01-01", tz="UTC"))
    assert r.balanced() and r.read == dirt.rows_written
    c = dirt.counts
    assert r.by_reason == {k: v for k, v in {
        "date_too_old": c["bad_date_1899"], "date_in_future": c["bad_date_2100"], "bad_date": c["bad_date_text"],
    }.items() if v}
    assert r.duplicates == c["duplicates"] and r.updated == c["changed_duplicates"]
    assert r.unmapped and sum(r.unmapped.values()) == c["unmapped_categories"]
    assert r.flags.get("coords_zero", 0) == c["zero_coords"] and r.flags.get("coords_invalid", 0) == c["nan_coords"]
    stored = store.incidents(IncidentFilter(include_non_crime=True), columns=["incident_id", "category", "lat"])
    assert len(stored) == r.stored
    no_loc = stored["lat"].isna().sum()
    assert no_loc == c["missing_coords"] + c["zero_coords"] + c["nan_coords"]
    # every clean incident got back the category the generator gave it
    truth = city.incidents[["incident_id", "category"]]
    m = stored.merge(truth, on="incident_id", suffixes=("", "_true"))
    m = m[m["category"] != "unknown"]
    assert len(m) > 0.95 * len(truth) and (m["category"] == m["category_true"]).mean() > 0.999
