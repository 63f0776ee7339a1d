"""Lake on an object store vs a local lake: ingest and the standard aggregates, same process, same file.

Starts ``moto_server`` (the S3 REST server the tests use) on loopback, makes a synthetic
Chicago-portal file (bench/ingest.py's generator, cached in bench/data/), and in interleaved
rounds loads it into a fresh local lake and a fresh ``s3://`` lake, then times ``info``, weekly
``trends`` and ``compstat`` on each. Prints per-round seconds and the S3 / local ratio.

What the ratio measures: crimelens' object-store path (uploads, listing, Arrow-dataset reads)
plus a Python S3 server sharing this machine's cores — not the latency of a real S3 region.

    python bench/lake_s3.py --rows 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

AGGREGATES = {"info": ["info", "--json"], "trends": ["trends", "--period", "week", "--json"],
              "compstat": ["compstat", "--json"]}


def _moto() -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which("moto_server")
    if exe is None:
        raise SystemExit("moto_server not found: pip install 'moto[server]' (the dev extra)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    for _ in range(300):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}"
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto_server did not start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, default=1e5)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from ingest import make_file
    from pyarrow import fs as pafs
    from scale import cli_seconds

    os.environ.setdefault("CRIMELENS_PSEUDONYM_KEY", "bench-key-0123456789abcdef")
    proc, endpoint = _moto()
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench-secret",
                      AWS_REGION="us-east-1")
    pafs.S3FileSystem(access_key="bench", secret_key="bench-secret", endpoint_override=endpoint.split("//")[1],
                      scheme="http", allow_bucket_creation=True).create_dir("bench-lake")
    rows = int(args.rows)
    csv = make_file(rows)
    print(f"rows {rows:,}; load at start {os.getloadavg()}", flush=True)
    out: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="lake-s3-") as tmp:
            for r in range(args.rounds):
                for where in ("local", "s3"):
                    db = f"lake:{tmp}/{uuid.uuid4().hex}" if where == "local" else \
                        f"lake:s3://bench-lake/{uuid.uuid4().hex}"
                    t = {"ingest": cli_seconds(["ingest", str(csv), "--preset", "chicago", "--db", db, "--json"])}
                    for name, cmd in AGGREGATES.items():
                        t[name] = cli_seconds([*cmd, "--db", db])
                    for k, v in t.items():
                        out.setdefault(f"{where}_{k}", []).append(v)
                    print(json.dumps({"round": r, "where": where, **{k: round(v, 3) for k, v in t.items()},
                                      "load": [round(x, 2) for x in os.getloadavg()]}), flush=True)
    finally:
        proc.terminate()
    summary = {}
    for k in ("ingest", *AGGREGATES):
        loc, s3 = statistics.median(out[f"local_{k}"]), statistics.median(out[f"s3_{k}"])
        ratios = [b / a for a, b in zip(out[f"local_{k}"], out[f"s3_{k}"], strict=True)]
        summary[k] = {"local_s": round(loc, 3), "s3_s": round(s3, 3),
                      "ratio_median": round(statistics.median(ratios), 2), "ratios": [round(x, 2) for x in ratios]}
    summary["ingest"]["local_rows_per_s"] = round(rows / summary["ingest"]["local_s"])
    summary["ingest"]["s3_rows_per_s"] = round(rows / summary["ingest"]["s3_s"])
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
