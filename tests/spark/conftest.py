"""Fixtures for the lake and Spark tests: one SparkSession per test session, one real sample file.

The sample is the first rows of the Chicago extract under ../shared/datasets (skipped when
absent) plus rows that exercise every path of a load: a repeated row (duplicate), a second
version of a record (update within the file), an unparseable date and a missing id (quarantine).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_file

SAMPLE_ROWS = 1_200


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local[2] SparkSession shared by every Spark test (skips without pyspark or Java)."""
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    from crimelens.spark.session import java_available, spark_session

    if not java_available():
        pytest.skip("no Java runtime: Spark cannot start")
    session = spark_session("local[2]")
    yield session
    session.stop()


def write_sample(path: Path, rows: int = SAMPLE_ROWS, *, changed: int = 0, start: int = 0) -> Path:
    """Rows ``start``.. of the real Chicago extract, with the damaged and repeated rows appended.

    ``changed`` rows at the top get a different description (a new version of each record).
    """
    src = shared_file("chicago_2015_02", "chicagoCrimes10k.csv")
    with src.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = []
        for i, row in enumerate(reader):
            if i >= start + rows:
                break
            if i >= start:
                body.append(row)
    desc = header.index("Description")
    for row in body[:changed]:
        row[desc] = row[desc] + " (REVISED)"
    date, ident = header.index("Date"), header.index("ID")
    extra = [list(body[0]), list(body[1])]
    extra[1][desc] = extra[1][desc] + " (SECOND VERSION)"
    bad_date = list(body[2])
    bad_date[date], bad_date[ident] = "not a date", "99999991"
    no_id = list(body[3])
    no_id[ident] = ""
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows([*body, *extra, bad_date, no_id] if not changed else body)
    return path


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample file (see the module docstring)."""
    return write_sample(tmp_path_factory.mktemp("sample") / "chicago_sample.csv")
