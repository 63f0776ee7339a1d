"""Ingest throughput: crimelens end to end vs DuckDB's own CSV reader vs the bare pandas path.

A Chicago-portal file of N rows is made by the synthetic-city generator (cached in bench/data/).
Each contender runs in its own subprocess so its peak RSS is its own:

* ``duckdb_floor``  -- ``CREATE TABLE AS SELECT * FROM read_csv(...)``: parsing only, no cleaning;
* ``pandas_bare``   -- ``pd.read_csv`` + ``pd.to_datetime`` + insert into DuckDB: what an analyst
  writes by hand, cleaning nothing;
* ``crimelens``     -- read → validate → clean (times, coordinates, categories, ids, H3, quarantine)
  → atomic store load.

Usage: ``python bench/ingest.py [--rows 1000000] [--repeat 3] [--baseline-src DIR]``. Prints rows/s,
peak RSS and the ratios: the medians over rounds that each run every contender once, and each
round's own ratios. ``--baseline-src`` adds ``crimelens_baseline``: the same load run with the
package from another checkout's ``src`` (e.g. ``git worktree add /tmp/base <commit>``), to measure
a change against the code before it in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CONTENDERS = {
    "duckdb_floor": """
import duckdb, sys
con = duckdb.connect(sys.argv[2])
con.execute("CREATE TABLE raw AS SELECT * FROM read_csv(?, header=true)", [sys.argv[1]])
""",
    "pandas_bare": """
import duckdb, pandas as pd, sys
df = pd.read_csv(sys.argv[1], dtype=str)
df["Date"] = pd.to_datetime(df["Date"], format="%m/%d/%Y %I:%M:%S %p")
con = duckdb.connect(sys.argv[2])
con.execute("CREATE TABLE raw AS SELECT * FROM df")
""",
    "crimelens": """
import sys
from crimelens.ingest import ingest_file
from crimelens.sources.mapping import load_preset
from crimelens.store import connect
s = connect(sys.argv[2])
r = ingest_file(s, sys.argv[1], key=b"bench-key-0123456789abcdef", mapping=load_preset("chicago"))
assert r.balanced() and r.stored > 0, r
s.close()
""",
}


def make_file(rows: int) -> Path:
    path = HERE / "data" / f"chicago_{rows}.csv"
    if path.exists():
        return path
    from crimelens.synth import CityConfig, generate_city

    path.parent.mkdir(parents=True, exist_ok=True)
    city = generate_city(CityConfig(n_incidents=rows, days=3 * 365, seed=42))
    city.to_portal("chicago").to_csv(path, index=False)
    return path


def run(name: str, csv: Path, rows: int, baseline_src: str | None = None) -> dict[str, float]:
    db = HERE / "data" / f"bench_{name}.duckdb"
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    # VmHWM is this process's own peak (ru_maxrss would inherit the parent's across exec)
    code = CONTENDERS["crimelens" if name == "crimelens_baseline" else name] + (
        "\nimport re\nprint(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\n"
    )
    env = dict(os.environ)
    if name == "crimelens_baseline" and baseline_src:
        env["PYTHONPATH"] = baseline_src  # ahead of the installed (editable) package
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(csv), str(db)], capture_output=True, text=True, check=True,
                         env=env)
    seconds = time.perf_counter() - t0
    db.unlink(missing_ok=True)
    rss_mb = int(out.stdout.strip().splitlines()[-1]) / 1024
    return {"seconds": round(seconds, 2), "rows_per_s": round(rows / seconds), "peak_rss_mb": round(rss_mb)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds; each runs every contender once, and medians are reported")
    ap.add_argument("--baseline-src", default=None,
                    help="another checkout's src/ folder, run as the contender crimelens_baseline")
    args = ap.parse_args()
    csv = make_file(args.rows)
    names = [*CONTENDERS, *(["crimelens_baseline"] if args.baseline_src else [])]
    load_before = os.getloadavg()[0]
    # Rounds interleave the contenders so a change in machine load hits all of them alike; each
    # round gives its own ratios, and the medians over rounds are the headline.
    rounds = [{name: run(name, csv, args.rows, args.baseline_src) for name in names}
              for _ in range(max(1, args.repeat))]
    results = {name: {"seconds": round(statistics.median(r[name]["seconds"] for r in rounds), 2),
                      "rows_per_s": round(statistics.median(r[name]["rows_per_s"] for r in rounds)),
                      "peak_rss_mb": max(r[name]["peak_rss_mb"] for r in rounds)}  # the worst round
               for name in names}
    vs_floor = [r["crimelens"]["seconds"] / r["duckdb_floor"]["seconds"] for r in rounds]
    vs_pandas = [r["crimelens"]["seconds"] / r["pandas_bare"]["seconds"] for r in rounds]
    summary = {
        "rows": args.rows,
        "file_mb": round(csv.stat().st_size / 1e6, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}, "
                   f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        "rounds": len(rounds),
        "results": results,
        "crimelens_vs_duckdb_floor": round(statistics.median(vs_floor), 2),
        "crimelens_vs_pandas_bare": round(statistics.median(vs_pandas), 2),
        "per_round_vs_duckdb_floor": [round(v, 2) for v in vs_floor],
        "per_round_vs_pandas_bare": [round(v, 2) for v in vs_pandas],
    }
    if args.baseline_src:
        vs_base = [r["crimelens"]["seconds"] / r["crimelens_baseline"]["seconds"] for r in rounds]
        summary["crimelens_vs_baseline"] = round(statistics.median(vs_base), 2)
        summary["per_round_vs_baseline"] = [round(v, 2) for v in vs_base]
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
