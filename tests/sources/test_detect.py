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
