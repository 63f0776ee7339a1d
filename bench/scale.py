"""Scale bench: the same synthetic incidents on DuckDB, PostgreSQL and Spark local[2], in one run.

For every size (``--sizes``) a Chicago-portal file is made by the synthetic-city generator (cached
in bench/data/) and, per engine (``--engines``): ingest rows/s (wall and CPU of this process), the
seconds of the standard aggregates as a user runs them (``info``, weekly ``trends``, ``compstat``,
``hotspots --method gistar`` grid counts), the peak RSS of this process and of the Spark JVM
(psutil children), and PostgreSQL's table size. PostgreSQL gets one schema per size, dropped at
the end. Then a 100M row is **extrapolated** linearly from the per-row costs measured at the
largest size, and the crossover (the size where Spark's aggregate time beats DuckDB's) is
reported, or "not reached" with the Spark/DuckDB ratio per size.

    python bench/scale.py --sizes 1e5,1e6 --engines duckdb,postgres,spark [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
PG = "postgresql://postgres@127.0.0.1:5432/postgres"
AGGREGATES = {
    "info": ["info", "--json"],
    "trends_week": ["trends", "--period", "week", "--json"],
    "compstat": ["compstat", "--json"],
    "gistar_counts": ["hotspots", "--method", "gistar", "--cell", "500", "--json"],
}


def _rss_mb() -> tuple[float, float]:
    """(peak RSS of this process, current RSS of its child processes — the Spark JVM) in MB.

    Each engine is measured in a fresh process (``--one``), so the peak is that engine's own.
    """
    import psutil

    # VmHWM is this process's own peak; ru_maxrss would carry the parent's across exec
    hwm = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    own = int(hwm.group(1)) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = sum(c.memory_info().rss for c in psutil.Process().children(recursive=True)) / 2**20
    return round(own, 1), round(kids, 1)


def cli_seconds(args: list[str]) -> float:
    """Run one crimelens command in this process; its wall seconds (exits on failure)."""
    from typer.testing import CliRunner

    from crimelens.cli.app import app

    t = time.perf_counter()
    res = CliRunner().invoke(app, args)
    if res.exit_code != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed: {res.output.strip()[-300:]}")
    return time.perf_counter() - t


def measure(engine: str, csv: Path, rows: int, work: Path) -> dict[str, Any]:
    """Ingest ``csv`` on ``engine`` and time the aggregates; the store is left in ``work`` (or PG)."""
    schema = None
    if engine == "duckdb":
        db = ["--db", str(work / f"d{rows}.duckdb")]
    elif engine == "postgres":
        schema = f"bench_scale_{rows}_{uuid.uuid4().hex[:6]}"
        db = ["--db", f"{PG}?schema={schema}"]
    else:
        db = ["--db", f"lake:{work / f'lake{rows}'}", "--engine", "spark", "--spark-master", "local[2]"]
    out: dict[str, Any] = {"engine": engine, "rows": rows}
    c0, t0 = time.process_time(), time.perf_counter()
    cli_seconds(["ingest", str(csv), "--preset", "chicago", *db, "--json"])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.update(ingest_s=round(wall, 2), ingest_cpu_s=round(cpu, 2), ingest_rows_per_s=round(rows / wall))
    for name, args in AGGREGATES.items():
        extra = ["--out", str(work / f"gi-{engine}-{rows}.csv")] if name == "gistar_counts" else []
        out[f"{name}_s"] = round(cli_seconds([*args, *extra, *db]), 3)
    out["aggregates_s"] = round(sum(out[f"{n}_s"] for n in AGGREGATES), 3)
    out["peak_rss_mb"], out["spark_jvm_rss_mb"] = _rss_mb()
    if schema is not None:
        import psycopg

        with psycopg.connect(PG, autocommit=True) as con:
            size = con.execute("SELECT pg_total_relation_size(%s)", (f"{schema}.incidents",)).fetchone()
            out["pg_incidents_mb"] = round(int(size[0]) / 2**20, 1) if size else None
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    return out


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """100M extrapolated from the per-row costs at the largest size; the Spark/DuckDB crossover."""
    target = 100_000_000
    extrapolated = {}
    for engine in {r["engine"] for r in results}:
        top = max((r for r in results if r["engine"] == engine), key=lambda r: r["rows"])
        k = target / top["rows"]
        extrapolated[engine] = {"from_rows": top["rows"], "ingest_s": round(top["ingest_s"] * k),
                                "aggregates_s": round(top["aggregates_s"] * k, 1)}
    ratios = {}
    for r in results:
        if r["engine"] == "spark":
            duck = [d for d in results if d["engine"] == "duckdb" and d["rows"] == r["rows"]]
            if duck:
                ratios[r["rows"]] = round(r["aggregates_s"] / duck[0]["aggregates_s"], 2)
    beaten = [n for n, q in sorted(ratios.items()) if q < 1]
    crossover = (f"{beaten[0]:,} rows" if beaten else
                 "not reached on 2 cores (spark/duckdb aggregate time by size: "
                 + ", ".join(f"{n:,}: {q}x" for n, q in sorted(ratios.items())) + ")") if ratios else "spark not run"
    return {"extrapolated_100M_linear_per_row": extrapolated, "crossover": crossover}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1e6,1e7")
    ap.add_argument("--engines", default="duckdb,postgres,spark")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--one", nargs=4, metavar=("ENGINE", "ROWS", "CSV", "WORK"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("CRIMELENS_PSEUDONYM_KEY", "bench-key-0123456789abcdef")
    if args.one:  # one engine at one size, in its own process (its own peak RSS)
        engine, rows, csv_path, work = args.one
        print(json.dumps(measure(engine, Path(csv_path), int(rows), Path(work))), flush=True)
        return
    from ingest import make_file

    print(f"load at start: {os.getloadavg()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        for rows in [int(float(s)) for s in args.sizes.split(",")]:
            csv = make_file(rows)
            for engine in args.engines.split(","):
                done = subprocess.run([sys.executable, __file__, "--one", engine, str(rows), str(csv), tmp],
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"{engine} at {rows:,} failed: {done.stderr.strip()[-400:]}")
                r = json.loads(done.stdout.strip().splitlines()[-1])
                r["load"] = [round(x, 2) for x in os.getloadavg()]
                print(json.dumps(r), flush=True)
                results.append(r)
    summary = summarise(results)
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"results": results, **summary}, indent=1))


if __name__ == "__main__":
    main()
