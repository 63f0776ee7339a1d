import pytest

from crimelens.exceptions import InputError
from crimelens.taxonomy import BY_NAME, CATEGORIES, ROLLUPS, category, expand, is_crime


def test_every_rollup_covers_existing_leaves_of_its_group() -> None:
    for rollup, leaves in ROLLUPS.items():
        assert BY_NAME[rollup].precision == "rollup"
        for leaf in leaves:
            assert BY_NAME[leaf].precision == "leaf"
            assert BY_NAME[leaf].group == BY_NAME[rollup].group


def test_robbery_is_violent_in_ucr_but_property_in_nibrs() -> None:
    rob = category("robbery")
    assert rob.group == "violent" and rob.ucr_part1 == "violent" and rob.crimes_against == "property"


def test_expand_groups_and_rollups() -> None:
    assert set(expand(["assault"])) == {"assault", "aggravated_assault", "simple_assault"}
    violent = expand(["violent"])
    assert "homicide" in violent and "burglary" not in violent
    assert len(set(c.name for c in CATEGORIES)) == len(CATEGORIES)


def test_unknown_category_names_closest() -> None:
    with pytest.raises(InputError, match="burglary"):
        category("burglery")


def test_non_crime_excluded_from_crime() -> None:
    assert not is_crime("anti_social_behaviour") and is_crime("theft")
