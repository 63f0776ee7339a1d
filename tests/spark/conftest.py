"""Fixtures for the lake and Spark tests: one SparkSession per test session, one real sample file.

The sample is the first rows of the Chicago extract under ../shared/datasets (skipped when
absent) plus rows that exercise every path of a load: a repeated row (duplicate), a second
version of a record (update within the file), an unparseable date and a missing id (quarantine).
"""

from __future__ import annotations

import csv
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
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


@dataclass(frozen=True)
class S3Server:
    """An S3-protocol server on loopback and the environment that reaches it."""

    endpoint: str
    bucket: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3 server (``moto_server``, the dev extra) on a free loopback port, with one bucket.

    It speaks the S3 REST protocol over HTTP, so pyarrow's S3 client and Hadoop's S3A talk to it
    exactly as to S3 or MinIO (neither is in this machine's registries). Skips when it is absent.
    """
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if exe is None:
        pytest.skip("moto_server (moto[server], the dev extra) is not installed: no S3 endpoint to test against")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path_factory.mktemp("s3") / "moto.log").open("w")
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("moto_server did not start within 30 s")
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "crimelens-test",
           "AWS_SECRET_ACCESS_KEY": "crimelens-test-secret", "AWS_REGION": "us-east-1"}
    from pyarrow import fs as pafs

    pafs.S3FileSystem(access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                      endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                      allow_bucket_creation=True).create_dir("crimelens-lake")
    yield S3Server(env["AWS_ENDPOINT_URL"], "crimelens-lake", env)
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The S3 server's environment set for this test (credentials and endpoint, as a user sets them)."""
    for key, value in s3_server.env.items():
        monkeypatch.setenv(key, value)
    return s3_server
