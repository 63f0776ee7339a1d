import pytest

from crimelens.exceptions import InputError
from crimelens.sources.detect import detect_preset
from crimelens.sources.mapping import list_presets, load_preset
from tests.conftest import CHICAGO_HEADER


def test_every_preset_is_detected_from_its_own_columns() -> None:
    for name in list_presets():
        m = load_preset(name)
        header = [*sorted(m.columns() | set(m.detect)), "Unrelated Extra"]
        assert detect_preset(header).name == name


def test_chicago_header() -> None:
    assert detect_preset(CHICAGO_HEADER).name == "chicago"


def test_unknown_header_names_closest_presets() -> None:
    with pytest.raises(InputError, match=r"unknown header.*chicago"):
        detect_preset(["ID", "Date", "Primary Type", "Something"])


def test_portal_query_with_one_mark_and_five_columns_is_detected() -> None:
    """A query that kept date, offence, description, block and coordinates (no IUCR, FBI code or id)."""
    from crimelens.sources.detect import detect

    fit = detect(["Date", "Primary Type", "Description", "Block", "Latitude", "Longitude"])
    assert fit.mapping.name == "chicago"
    assert "ID" in fit.missing and any("detected preset 'chicago'" in n for n in fit.notes)
    with pytest.raises(InputError, match="unknown header"):  # one mark, too few columns
        detect(["Date", "Primary Type", "Latitude", "Longitude"])
