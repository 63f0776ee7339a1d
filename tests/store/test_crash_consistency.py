"""DUR-01: a load killed with SIGKILL at random moments leaves zero or all of its rows."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.conftest import CHICAGO_HEADER, TEST_KEY, chicago_row, write_csv

N_ROWS = 60_000
SCRIPT = """
import sys
from crimelens.ingest import ingest_file
from crimelens.store import connect
s = connect(sys.argv[2])
r = ingest_file(s, sys.argv[1], key=sys.argv[3].encode(), chunk_rows=5_000)
s.close()
print("done", r.stored)
"""


def _counts(db: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return tuple(  # type: ignore[return-value]
            con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("incidents", "files", "quarantine")
        )
    finally:
        con.close()


@pytest.mark.slow
def test_sigkill_during_ingest_leaves_all_or_nothing(tmp_path: Path) -> None:
    rows = [chicago_row(i, Date=f"01/{1 + i % 28:02d}/2024 {1 + i % 12:02d}:{i % 60:02d}:00 PM") for i in range(N_ROWS)]
    rows[7]["Date"] = "garbage"  # one quarantined row rides along with the batch
    src = write_csv(tmp_path / "big.csv", rows, header=CHICAGO_HEADER)
    db = tmp_path / "kill.duckdb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    rng = random.Random(1234)
    outcomes = []
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), str(db), TEST_KEY.decode()], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.3, 4.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if not db.exists():
            outcomes.append("before-create")
            continue
        incidents, files, quarantined = _counts(db)
        assert (incidents, files, quarantined) in {(0, 0, 0), (N_ROWS - 1, 1, 1)}, (incidents, files, quarantined)
        outcomes.append("none" if files == 0 else "all")
        if files:
            break
    # a re-run after the kills completes (or finds the file already loaded) and the store is whole
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(src), str(db), TEST_KEY.decode()], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert _counts(db) == (N_ROWS - 1, 1, 1)
    assert "none" in outcomes or "all" in outcomes
