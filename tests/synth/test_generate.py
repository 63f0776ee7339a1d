"""The canonical output of the generator: schema, determinism, exact counts, coherent columns."""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.geo.crs import local_utm, to_local
from crimelens.schema import INCIDENT_COLUMNS, to_arrow, validate
from crimelens.synth import CityConfig, RecordingBias, SyntheticCity, generate_city
from crimelens.synth.codes import OFFENSES, PROFILES


def test_canonical_frame_passes_the_schema_gate(city: SyntheticCity, poisson_city: SyntheticCity) -> None:
    for c in (city, poisson_city):
        validate(c.incidents)
        assert len(to_arrow(c.incidents)) == len(c.incidents)
        assert set(INCIDENT_COLUMNS) <= set(c.incidents.columns)


def test_exact_count_source_and_lineage_columns(city: SyntheticCity) -> None:
    inc = city.incidents
    assert len(inc) == city.config.n_incidents
    assert set(inc["source"]) == {"synthetic"} and set(inc["batch_id"]) == {"synthetic"}
    assert inc["incident_id"].is_unique and inc["row_hash"].notna().all()
    assert set(inc["time_precision"]) == {"minute"} and set(inc["location_precision"]) == {"block"}
    assert inc["occurred_at"].is_monotonic_increasing
    assert (inc["ingested_at"] >= inc["reported_at"]).all() and (inc["reported_at"] >= inc["occurred_at"]).all()


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    cfg = CityConfig(n_incidents=2_000, days=40, seed=3, size_m=5_000.0)
    a, b = generate_city(cfg), generate_city(cfg)
    pd.testing.assert_frame_equal(a.incidents, b.incidents)
    pd.testing.assert_frame_equal(a.truth.intensity, b.truth.intensity)
    pd.testing.assert_frame_equal(a.to_portal("chicago"), b.to_portal("chicago"))
    c = generate_city(cfg, seed=4)
    assert not np.array_equal(a.incidents["x"].to_numpy(), c.incidents["x"].to_numpy())


def test_geography_depends_on_the_seed_only() -> None:
    a = generate_city(CityConfig(n_incidents=1_000, days=30, seed=9, size_m=6_000.0))
    b = generate_city(CityConfig(n_incidents=3_000, days=90, seed=9, size_m=6_000.0))
    pd.testing.assert_frame_equal(a.truth.hotspots, b.truth.hotspots)
    pd.testing.assert_frame_equal(a.truth.covariates, b.truth.covariates)


def test_period_and_time_zone(city: SyntheticCity) -> None:
    occ = city.incidents["occurred_at"]
    assert str(occ.dt.tz) == "UTC"
    local = occ.dt.tz_convert("America/Chicago")
    assert local.min() >= pd.Timestamp("2022-01-01", tz="America/Chicago")
    assert local.max() < pd.Timestamp("2023-01-01", tz="America/Chicago")
    assert (occ.dt.second == 0).all()


def test_coordinates_are_local_utm_block_points_near_the_centre(city: SyntheticCity) -> None:
    inc = city.incidents
    crs = local_utm(-87.68, 41.84)
    assert set(inc["crs"]) == {crs}
    x, y = to_local(inc["lon"].to_numpy(), inc["lat"].to_numpy(), crs)
    assert np.abs(x - inc["x"]).max() < 0.01 and np.abs(y - inc["y"]).max() < 0.01
    assert abs(inc["lon"].mean() + 87.68) < 0.05 and abs(inc["lat"].mean() - 41.84) < 0.05
    # block points: far fewer distinct points than incidents, on the 100 m street grid
    assert inc[["x", "y"]].drop_duplicates().shape[0] < len(inc) / 3
    ox, oy = city.truth.params["origin"]
    off_x = np.mod(inc["x"] - ox - 30.0, 100.0)
    off_y = np.mod(inc["y"] - oy - 30.0, 100.0)
    on_street = np.isclose(off_x, 0) | np.isclose(off_x, 100) | np.isclose(off_y, 0) | np.isclose(off_y, 100)
    assert on_street.all()


def test_h3_columns_match_the_h3_library(city: SyntheticCity) -> None:
    """h3_9 is the point's cell; coarser ones are its parents (nested, as the ingest computes them)."""
    sample = city.incidents.sample(300, random_state=0)
    want9 = [h3i.latlng_to_cell(a, b, 9) for a, b in zip(sample["lat"], sample["lon"], strict=True)]
    assert sample["h3_9"].tolist() == want9
    for res in (7, 8):
        assert sample[f"h3_{res}"].tolist() == [h3i.cell_to_parent(c, res) for c in want9]


def test_offence_codes_categories_and_flags_agree_with_the_code_table(city: SyntheticCity) -> None:
    inc = city.incidents
    by_code = {o.iucr: o for o in OFFENSES}
    pairs = inc[["offense_code", "offense", "category"]].drop_duplicates()
    for code, ptype, cat in pairs.itertuples(index=False):
        assert by_code[code].primary_type == ptype and by_code[code].category == cat
    domestic_battery = inc["offense_code"] == "0486"
    assert inc.loc[domestic_battery, "domestic"].all()
    assert inc.loc[inc["offense_code"] == "0630", "attempted"].all()
    assert inc.loc[inc["offense_code"].isin(["031A", "051A", "143A"]), "firearm"].all()
    police = inc["discovery"] == "police_initiated"
    allowed = {c for c, p in PROFILES.items() if p.police_initiated}
    assert police.any() and set(inc.loc[police, "category"]) <= allowed
    shares = inc["category"].value_counts(normalize=True)
    assert shares.index[0] in ("simple_assault", "theft")  # the biggest categories, as in Chicago
    assert shares["homicide"] < 0.01


def test_area_ids_are_a_nested_partition(city: SyntheticCity) -> None:
    inc = city.incidents
    for col in ("beat", "district", "ward", "community_area", "address"):
        assert inc[col].notna().all()
    assert inc["beat"].str.fullmatch(r"\d{4}").all() and inc["district"].str.fullmatch(r"\d{3}").all()
    # a beat lies in exactly one district, and its number starts with the district's
    per_beat = inc.groupby("beat")["district"].nunique()
    assert (per_beat == 1).all()
    first = inc.drop_duplicates("beat")
    assert (first["beat"].str[:2] == first["district"].str[1:]).all()
    # a block point has one address and one set of areas
    assert (inc.groupby(["x", "y"])[["address", "beat", "ward"]].nunique() == 1).all().all()
    assert inc["address"].str.fullmatch(r"(0000X|\d{3}XX) [NSEW] [A-Z0-9 ]+").all()


def test_poisson_city_has_exact_uniform_points(poisson_city: SyntheticCity) -> None:
    inc = poisson_city.incidents
    assert set(inc["location_precision"]) == {"exact"}
    assert inc[["x", "y"]].drop_duplicates().shape[0] == len(inc)
    assert (poisson_city.truth.lineage["generation"] == 0).all()
    assert poisson_city.truth.hotspot_cells.empty


def test_invalid_configs_are_input_errors() -> None:
    bad: list[dict[str, object]] = [
        {"n_incidents": 0}, {"days": 0}, {"kind": "weird"}, {"timezone": "Mars/Olympus"},
        {"start": "not a date"}, {"branching_ratio": 0.95}, {"size_m": 300.0},
        {"category_shares": {"no_such_thing": 1.0}}, {"truth_categories": ("assault",)},
        {"center": (200.0, 10.0)}, {"hotspot_share": 1.5},
    ]
    for kw in bad:
        with pytest.raises(InputError):
            CityConfig(**kw)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        RecordingBias(inside=0.0)


def test_category_shares_override_changes_the_mix() -> None:
    c = generate_city(CityConfig(n_incidents=3_000, days=30, seed=2, size_m=5_000.0,
                                 category_shares={"burglary": 5.0}))
    assert c.incidents["category"].value_counts(normalize=True)["burglary"] > 0.4
