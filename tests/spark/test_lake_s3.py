"""The Parquet lake on an S3-protocol object store (``--db lake:s3://bucket/prefix``).

Against a real S3 REST server on loopback (``moto_server``; see ``tests/spark/conftest.py``):
the same answers as a local lake, copy-on-write updates, one writer at a time (lease), a SIGKILL
during a load leaves the lake as it was, bad input in one line; and Spark (``--engine spark``)
writing and reading the same bucket through Hadoop's S3A.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pyarrow import fs as pafs
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.exceptions import InputError, StoreBusyError
from crimelens.ingest import ingest_file
from crimelens.store import connect
from crimelens.store.lake import MANIFEST, read_manifest
from crimelens.store.lakefs import open_lake_fs
from tests.conftest import TEST_KEY, shared_file
from tests.spark.conftest import S3Server, write_sample
from tests.spark.test_lake import _incidents, _info, _quarantine, _report

JARS = Path(sys.executable).parent.parent / "s3a-jars"
#: hadoop-aws 3.3.1 (the one the registries hold) reads these as plain numbers; the Hadoop 3.5
#: client's defaults write them with units ("60s"). A cluster with a matching hadoop-aws needs none.
OLD_S3A_NUMBERS = {"threads.keepalivetime": "60", "connection.establish.timeout": "30000",
                   "connection.timeout": "200000", "multipart.purge.age": "86400", "connection.ttl": "300000",
                   "retry.interval": "500", "retry.throttle.interval": "100", "connection.request.timeout": "0",
                   "connection.acquisition.timeout": "60000", "connection.idle.time": "60000",
                   "multipart.size": "67108864"}


def _url(server: S3Server) -> str:
    return f"lake:s3://{server.bucket}/t-{uuid.uuid4().hex[:10]}"


def _objects(url: str) -> set[str]:
    """Every data object under the lake's prefix, relative to it."""
    lfs = open_lake_fs(url.removeprefix("lake:"))
    return {r for t in ("incidents", "incident_personal", "quarantine") for r in lfs.files_under(t, ".parquet")}


def _listed(url: str) -> set[str]:
    return {f for fs in read_manifest(url.removeprefix("lake:"))["tables"].values() for f in fs}


def test_s3_lake_matches_a_local_lake(tmp_path: Path, sample: Path, s3_env: S3Server) -> None:
    url = _url(s3_env)
    local, remote = connect(f"lake:{tmp_path / 'lake'}"), connect(url)
    rl, rr = ingest_file(local, sample, key=TEST_KEY), ingest_file(remote, sample, key=TEST_KEY)
    assert rr.balanced() and rr.quarantined >= 2 and rr.duplicates >= 1 and rr.updated >= 1
    assert _report(rr) == _report(rl)
    pd.testing.assert_frame_equal(_incidents(remote), _incidents(local))
    pd.testing.assert_frame_equal(_quarantine(remote), _quarantine(local))
    assert _info(remote) == _info(local)
    for by in (["week", "category"], ["cell:250"], ["hour", "weekday"], ["district"]):
        pd.testing.assert_frame_equal(remote.counts(by), local.counts(by), check_dtype=False)
    assert _objects(url) == _listed(url) and all(f.startswith("incidents/source=chicago/year=")
                                                 for f in read_manifest(url[5:])["tables"]["incidents"])
    assert ingest_file(remote, sample, key=TEST_KEY).skipped
    again = connect(url, read_only=True)  # a second reader (a laptop) opening the bucket
    pd.testing.assert_frame_equal(_incidents(again), _incidents(local))
    for s in (local, remote, again):
        s.close()


def test_s3_later_files_update_by_copy_on_write(tmp_path: Path, s3_env: S3Server) -> None:
    files = [write_sample(tmp_path / "a.csv", 300),
             write_sample(tmp_path / "b.csv", 40, changed=10, start=290),
             write_sample(tmp_path / "c.csv", 20, start=300),
             write_sample(tmp_path / "e.csv", 20, start=300, changed=20)]
    url = _url(s3_env)
    remote, local = connect(url), connect(f"lake:{tmp_path / 'lake'}")
    got = [_report(ingest_file(remote, f, key=TEST_KEY)) for f in files]
    want = [_report(ingest_file(local, f, key=TEST_KEY)) for f in files]
    assert got == want and [r[1:4] for r in got] == [(300, 1, 1), (30, 10, 0), (0, 2, 20), (0, 20, 0)]
    pd.testing.assert_frame_equal(_incidents(remote), _incidents(local))
    assert _objects(url) == _listed(url)  # rewritten objects replaced, none left behind
    remote.close()
    local.close()


def test_s3_one_writer_at_a_time(tmp_path: Path, sample: Path, s3_env: S3Server) -> None:
    url = _url(s3_env)
    first, second = connect(url), connect(url)
    with first.batch("chicago", "f", "0" * 64, "b1"), pytest.raises(StoreBusyError, match="another process is writing"):
        second.batch("chicago", "g", "1" * 64, "b2").__enter__()
    assert ingest_file(second, sample, key=TEST_KEY).balanced()  # free again once the first let go
    # a lease left by a process that died on this host is taken over at once
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lfs = open_lake_fs(url[5:])
    lfs.write_atomic("_lock.json", json.dumps({"owner": "gone", "host": os.uname().nodename, "pid": dead.pid,
                                               "expires": time.time() + 3600}).encode())
    with second.batch("chicago", "h", "2" * 64, "b3"):
        assert json.loads(lfs.read_bytes("_lock.json") or b"{}")["pid"] == os.getpid()
    assert not lfs.exists("_lock.json")
    first.close()
    second.close()


SCRIPT = """
import sys
from crimelens.ingest import ingest_file
from crimelens.store import connect
s = connect(sys.argv[2])
ingest_file(s, sys.argv[1], key=sys.argv[3].encode(), chunk_rows=1_000)
"""


def test_s3_killed_load_leaves_the_lake_as_it_was(tmp_path: Path, sample: Path, s3_env: S3Server) -> None:
    big = shared_file("chicago_2015_02", "chicagoCrimes10k.csv")
    url = _url(s3_env)
    lake = connect(url)
    ingest_file(lake, sample, key=TEST_KEY)
    before = _incidents(lake)
    lfs = open_lake_fs(url[5:])
    manifest = lfs.read_bytes(MANIFEST)
    lake.close()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(big), url, TEST_KEY.decode()], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(scratch.glob("crimelens-lake-*/stage.duckdb")):
        time.sleep(0.05)
    time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the load finished before the kill: nothing was tested"
    assert lfs.read_bytes(MANIFEST) == manifest and lfs.exists("_lock.json")  # the dead writer's lease
    again = connect(url)
    pd.testing.assert_frame_equal(_incidents(again), before)
    report = ingest_file(again, big, key=TEST_KEY)  # takes over the dead lease, sweeps what was left
    assert report.balanced() and report.stored > 8_000  # the sample's rows were already held
    assert _objects(url) == _listed(url) and not lfs.exists("_lock.json")
    again.close()


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, (res.stderr if res.stderr else res.output)


def test_s3_bad_input_is_one_line_and_exit_2(sample: Path, s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [
        (["info", "--db", f"lake:s3://{s3_env.bucket}"], "name a bucket and a prefix"),
        (["info", "--db", "lake:gs://bucket/crimes"], "gs:// lakes are not supported"),
        (["info", "--db", f"lake:s3://{s3_env.bucket}/x?endpoint=h"], "in the environment"),
        (["info", "--db", f"lake:s3://{s3_env.bucket}/never-written"], "no such lake"),
        (["ingest", str(sample), "--db", "lake:s3://no-such-bucket-here/x"], "cannot write to lake s3://"),
    ]
    for args, says in cases:
        code, text = _cli(*args)
        assert code == 2, (args, text)
        assert says in text and len(text.strip().splitlines()) == 1, (args, text)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    code, text = _cli("ingest", str(sample), "--db", f"lake:s3://{s3_env.bucket}/y")
    assert code == 2 and "cannot write to lake s3://" in text and len(text.strip().splitlines()) == 1, text
    assert "crimelens-test-secret" not in text


def test_spark_without_s3a_is_refused_in_one_line(spark: Any, s3_env: S3Server) -> None:
    from crimelens.spark.session import require_s3a

    try:
        require_s3a(spark, "probe")
        pytest.skip("this Spark already has S3A on its classpath")
    except InputError:
        pass
    url = _url(s3_env)
    with pytest.raises(InputError, match=r"no S3A filesystem .* hadoop-aws") as err:
        connect(url, engine="spark", spark=spark)
    assert len(str(err.value).splitlines()) == 1


def _spark_cli(*args: str, env: dict[str, str]) -> dict[str, Any]:
    conf = [f"spark.jars={JARS / 'hadoop-aws-3.3.1.jar'},{JARS / 'aws-java-sdk-bundle-1.11.901.jar'}",
            *(f"spark.hadoop.fs.s3a.{k}={v}" for k, v in OLD_S3A_NUMBERS.items())]
    cmd = [sys.executable, "-m", "crimelens.cli.app", *args, "--engine", "spark", "--json",
           *(x for c in conf for x in ("--spark-conf", c))]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    out: dict[str, Any] = json.loads(res.stdout)
    return out


@pytest.mark.slow
def test_spark_writes_and_reads_an_s3a_lake(tmp_path: Path, sample: Path, s3_env: S3Server) -> None:
    if not (JARS / "hadoop-aws-3.3.1.jar").exists():
        pytest.skip(f"no hadoop-aws jar under {JARS} (make install fetches it with the dev and spark extras)")
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    url = _url(s3_env)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    got = _spark_cli("ingest", str(sample), "--db", url, env=env)
    report = got[0] if isinstance(got, list) else got
    local = connect(f"lake:{tmp_path / 'lake'}")
    want = ingest_file(local, sample, key=TEST_KEY)
    assert [report[k] for k in ("read", "stored", "updated", "duplicates", "quarantined")] == list(_report(want))
    info = _spark_cli("info", "--db", url, env=env)
    for k in ("store", "generation", "engine"):
        info.pop(k, None)
    assert info == _info(local)
    duck = connect(url, read_only=True)  # DuckDB opening what Spark wrote on the bucket
    pd.testing.assert_frame_equal(_incidents(duck), _incidents(local))
    pd.testing.assert_frame_equal(_quarantine(duck), _quarantine(local))
    assert _objects(url) == _listed(url) and not open_lake_fs(url[5:]).files_under("_staging")
    trends = _spark_cli("trends", "--period", "day", "--db", url, env=env)
    trends.pop("output", None)
    code, text = _cli("trends", "--period", "day", "--json", "--db", f"lake:{tmp_path / 'lake'}")
    want_trends = json.loads(text)
    want_trends.pop("output", None)
    assert code == 0 and trends == want_trends
    duck.close()
    local.close()


def test_lake_fs_lists_what_it_wrote(s3_env: S3Server) -> None:
    """The filesystem layer itself: atomic replace, listing, delete, on the bucket."""
    lfs = open_lake_fs(f"s3://{s3_env.bucket}/fs-{uuid.uuid4().hex[:8]}")
    assert lfs.read_bytes("a/b.json") is None and lfs.files_under("a") == []
    lfs.write_atomic("a/b.json", b"1")
    lfs.write_atomic("a/b.json", b"22")
    assert lfs.read_bytes("a/b.json") == b"22" and lfs.files_under("a") == ["a/b.json"]
    lfs.delete("a/b.json")
    lfs.delete("a/b.json")  # already gone: nothing
    assert lfs.files_under("a") == [] and not lfs.exists("a/b.json")
    s3 = pafs.S3FileSystem(endpoint_override=s3_env.endpoint.split("//", 1)[1], scheme="http",
                           access_key=s3_env.env["AWS_ACCESS_KEY_ID"], secret_key=s3_env.env["AWS_SECRET_ACCESS_KEY"])
    assert s3.get_file_info(lfs.path("a/b.json")).type == pafs.FileType.NotFound
