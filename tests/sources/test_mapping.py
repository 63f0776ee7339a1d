from pathlib import Path

import pytest

from crimelens.exceptions import MappingError
from crimelens.sources.mapping import list_presets, load_mapping, load_preset, parse_mapping

REQUIRED = {"chicago", "chicago_socrata", "sf_kaggle", "sf_incidents", "police_uk", "toronto_mci", "boston",
            "la", "nyc_complaints", "madison"}

MINIMAL = """
name = "mine"
timezone = "Europe/Paris"
[fields]
occurred_at = "when"
offense = "what"
[categories]
"vol" = "theft"
"re:^cambriolage" = "burglary"
default = "other_crime"
"""


def test_all_required_presets_ship_and_parse() -> None:
    assert set(list_presets()) >= REQUIRED
    for name in list_presets():
        m = load_preset(name)
        assert m.name == name
        assert "occurred_at" in m.fields


def test_minimal_mapping() -> None:
    m = parse_mapping(MINIMAL)
    assert m.categories == {"vol": "theft"}
    assert m.patterns[0][1] == "burglary" and m.default_category == "other_crime"
    assert m.id_strategy == "content_ordinal"


def test_toml_syntax_error_reports_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text('name = "x"\n[fields\noccurred_at = "d"\n')
    with pytest.raises(MappingError, match=r"line 2"):
        load_mapping(p)


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ('name = "x"\n[fields]\noffense = "o"\n', "occurred_at"),
        ('name = "x"\ntimezone = "Mars/Base"\n[fields]\noccurred_at = "d"\n', "time zone"),
        ('name = "x"\n[fields]\noccurred_at = "d"\nx = "X"\ny = "Y"\n', "crs"),
        ('name = "x"\n[fields]\noccurred_at = "d"\n[categories]\nfoo = "not_a_category"\n', "unknown category"),
        ('name = "x"\n[fields]\noccurred_at = "d"\nnope = "c"\n', "not a canonical field"),
        ('name = "x"\n[fields]\noccurred_at = "d"\n[categories]\n"re:([" = "theft"\n', "bad regex"),
        ('name = "x"\nbogus = 1\n[fields]\noccurred_at = "d"\n', "unknown keys"),
    ],
)
def test_invalid_mappings_are_clear_errors(snippet: str, message: str) -> None:
    with pytest.raises(MappingError, match=message):
        parse_mapping(snippet)


def test_unknown_preset_lists_available() -> None:
    with pytest.raises(MappingError, match="chicago"):
        load_preset("atlantis")


def test_extends_inherits_categories() -> None:
    soc = load_preset("chicago_socrata")
    base = load_preset("chicago")
    assert [p.pattern for p, _ in soc.patterns] == [p.pattern for p, _ in base.patterns]
    assert soc.fields["occurred_at"] == ("date",)
