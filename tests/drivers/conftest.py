"""Fixtures for the drivers tests: the Columbus and St Louis area files shipped inside libpysal."""

from __future__ import annotations

from pathlib import Path

import pytest


def libpysal_example(name: str) -> Path:
    """Path of a data file shipped in the libpysal wheel, or skip when this libpysal lacks it."""
    examples = pytest.importorskip("libpysal.examples")
    try:
        return Path(examples.get_path(name))
    except (KeyError, FileNotFoundError, OSError):
        pytest.skip(f"libpysal does not ship {name}")


@pytest.fixture(scope="session")
def columbus_shp() -> Path:
    return libpysal_example("columbus.shp")


@pytest.fixture(scope="session")
def stl_shp() -> Path:
    return libpysal_example("stl_hom.shp")
