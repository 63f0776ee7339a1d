"""The Parquet lake on DuckDB (``--db lake:DIR``): the same answers as the DuckDB store, atomic
loads (a SIGKILL leaves the lake as it was), the accounting identity, and bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.ingest import ingest_file
from crimelens.store import connect
from crimelens.store.lake import MANIFEST, STAGING, read_manifest
from tests.conftest import TEST_KEY, shared_file
from tests.spark.conftest import write_sample

VOLATILE = ["batch_id", "ingested_at"]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def _incidents(store: object) -> pd.DataFrame:
    df = store.incidents(include_personal=True)  # type: ignore[attr-defined]
    return df.drop(columns=VOLATILE).sort_values(["source", "incident_id"]).reset_index(drop=True)


def _quarantine(store: object) -> pd.DataFrame:
    q = store.quarantine()  # type: ignore[attr-defined]
    return q.drop(columns=["batch_id"]).sort_values(["line", "reason"]).reset_index(drop=True)


def _info(store: object, *drop: str) -> dict[str, object]:
    info = dict(store.info())  # type: ignore[attr-defined]
    for k in ("store", "generation", "engine", *drop):
        info.pop(k, None)
    return info


def _report(r: object) -> tuple[int, ...]:
    return (r.read, r.stored, r.updated, r.duplicates, r.quarantined)  # type: ignore[attr-defined]


def test_lake_matches_duckdb_store(tmp_path: Path, sample: Path) -> None:
    duck = connect(str(tmp_path / "d.duckdb"))
    lake = connect(f"lake:{tmp_path / 'lake'}")
    rd = ingest_file(duck, sample, key=TEST_KEY)
    rl = ingest_file(lake, sample, key=TEST_KEY)
    assert rl.balanced() and rl.quarantined >= 2 and rl.duplicates >= 1 and rl.updated >= 1
    assert _report(rl) == _report(rd)
    pd.testing.assert_frame_equal(_incidents(lake), _incidents(duck))
    pd.testing.assert_frame_equal(_quarantine(lake), _quarantine(duck))
    assert _info(lake) == _info(duck)
    for by in (["week", "category"], ["cell:250"], ["hour", "weekday"], ["district"]):
        pd.testing.assert_frame_equal(lake.counts(by), duck.counts(by))
    # hive partitions by source / year / month, only listed files
    files = read_manifest(tmp_path / "lake")["tables"]["incidents"]
    assert files and all(f.startswith("incidents/source=chicago/year=") and "/month=" in f for f in files)
    assert ingest_file(lake, sample, key=TEST_KEY).skipped  # same SHA-256: nothing to do
    duck.close()
    lake.close()


def test_later_files_update_by_copy_on_write(tmp_path: Path) -> None:
    files = [write_sample(tmp_path / "a.csv", 300),
             write_sample(tmp_path / "b.csv", 40, changed=10, start=290),  # 10 held ones change, 30 new
             write_sample(tmp_path / "c.csv", 20, start=300),  # 20 held, unchanged: duplicates
             write_sample(tmp_path / "e.csv", 20, start=300, changed=20)]  # the same 20, changed: updates
    lake = connect(f"lake:{tmp_path / 'lake'}")
    reports = [_report(ingest_file(lake, f, key=TEST_KEY)) for f in files]
    # stored, updated, duplicates (unchanged files also carry one repeated row and one second version)
    assert [r[1:4] for r in reports] == [(300, 1, 1), (30, 10, 0), (0, 2, 20), (0, 20, 0)]
    # the oracle: one DuckDB load of the files concatenated, where the last version of a record wins
    header, *_ = files[0].read_text().splitlines()
    joined = tmp_path / "all.csv"
    joined.write_text("\n".join([header] + [ln for f in files for ln in f.read_text().splitlines()[1:]]) + "\n")
    duck = connect(str(tmp_path / "d.duckdb"))
    ingest_file(duck, joined, key=TEST_KEY)
    got = _incidents(lake)
    pd.testing.assert_frame_equal(got, _incidents(duck))
    listed = {f for fs in read_manifest(tmp_path / "lake")["tables"].values() for f in fs}
    on_disk = {str(p.relative_to(tmp_path / "lake")) for p in (tmp_path / "lake").rglob("*.parquet")}
    assert on_disk == listed  # rewritten files replaced, none left behind
    duck.close()
    lake.close()


SCRIPT = """
import sys
from crimelens.ingest import ingest_file
from crimelens.store import connect
s = connect(sys.argv[2])
ingest_file(s, sys.argv[1], key=sys.argv[3].encode(), chunk_rows=1_000)
"""


def test_killed_load_leaves_the_lake_as_it_was(tmp_path: Path, sample: Path) -> None:
    big = shared_file("chicago_2015_02", "chicagoCrimes10k.csv")
    root = tmp_path / "lake"
    lake = connect(f"lake:{root}")
    ingest_file(lake, sample, key=TEST_KEY)
    before, manifest = _incidents(lake), (root / MANIFEST).read_bytes()
    lake.close()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(big), f"lake:{root}", TEST_KEY.decode()], env=ENV)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list((root / STAGING).rglob("stage.duckdb")):
        time.sleep(0.05)
    time.sleep(0.05)  # inside the load: on a quiet machine the whole file commits in about half a second
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the load finished before the kill: nothing was tested"
    assert (root / MANIFEST).read_bytes() == manifest
    again = connect(f"lake:{root}")
    pd.testing.assert_frame_equal(_incidents(again), before)
    report = ingest_file(again, big, key=TEST_KEY)  # the next writer sweeps the leftovers
    assert report.balanced() and not (root / STAGING).exists()
    listed = {f for fs in read_manifest(root)["tables"].values() for f in fs}
    assert {str(p.relative_to(root)) for p in root.rglob("*.parquet")} == listed
    again.close()


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, (res.stderr if res.stderr else res.output)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, sample: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = [
        (["info", "--db", "http://example.org/store"], "cannot use store URL"),
        (["ingest", str(sample), "--db", f"lake:{blocker / 'lake'}"], "cannot write to lake"),
        (["info", "--db", f"lake:{tmp_path / 'none'}"], "no such lake"),
        (["info", "--db", str(tmp_path / "x.duckdb"), "--engine", "spark"], "needs a lake store"),
        (["info", "--db", "lake:", "--engine", "duckdb"], "needs a directory"),
        (["info", "--db", f"lake:{tmp_path}", "--engine", "flink"], "unknown engine"),
        (["info", "--db", "lake:gs://bucket/crimes"], "gs:// lakes are not supported"),
        (["info", "--db", "lake:hdfs://head/crimes", "--engine", "spark"], "hdfs:// lakes are not supported"),
        (["info", "--db", "lake:S3://bucket"], "name a bucket and a prefix"),
    ]
    for args, says in cases:
        code, text = _cli(*args)
        assert code == 2, (args, text)
        assert says in text and len(text.strip().splitlines()) == 1, (args, text)
    assert not (blocker.exists() and blocker.is_dir())


def test_no_java_is_one_line_and_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="the [spark] extra is not installed")
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in ENV.items() if k != "JAVA_HOME"} | {"PATH": str(empty)}
    res = subprocess.run([sys.executable, "-m", "crimelens.cli.app", "info", "--db", f"lake:{tmp_path}",
                          "--engine", "spark", "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == ["error: cannot start Spark: no Java runtime found "
                                               "(install Java 17 or set JAVA_HOME)"]


def test_spark_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from crimelens.settings import Settings

    assert Settings().spark_master == "local[2]" and Settings().spark_conf == {}
    monkeypatch.setenv("CRIMELENS_SPARK_MASTER", "spark://head:7077")
    monkeypatch.setenv("CRIMELENS_SPARK_CONF", '{"spark.executor.memory": "8g"}')
    got = Settings()
    assert got.spark_master == "spark://head:7077"
    assert got.spark_conf == {"spark.executor.memory": "8g"}
