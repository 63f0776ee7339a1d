import json
from pathlib import Path

from typer.testing import CliRunner

from crimelens.cli.app import app
from tests.conftest import chicago_row, write_csv

runner = CliRunner()


def run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def test_ingest_json_accounting_and_info(tmp_path: Path) -> None:
    db = str(tmp_path / "c.duckdb")
    rows = [chicago_row(i) for i in range(4)] + [chicago_row(9, Date="bad")]
    src = write_csv(tmp_path / "c.csv", rows)
    res = run("ingest", str(src), "--db", db, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key in ("read", "stored", "updated", "duplicates", "quarantined"):
        assert isinstance(out[key], int)
    assert out["read"] == out["stored"] + out["updated"] + out["duplicates"] + out["quarantined"] == 5
    assert out["by_reason"] == {"bad_date": 1} and out["preset"] == "chicago"
    info = json.loads(run("info", "--db", db, "--json").stdout)
    assert info["incidents"] == 4 and info["by_source"] == {"chicago": 4}
    assert info["first_occurred_at"].startswith("2024-01-16T05:30")
    again = json.loads(run("ingest", str(src), "--db", db, "--json").stdout)
    assert again["skipped"] is True and again["stored"] == 0


def test_quarantine_export_neutralises_formulas(tmp_path: Path) -> None:
    db = str(tmp_path / "q.duckdb")
    src = write_csv(tmp_path / "q.csv", [chicago_row(1, Date="=HYPERLINK(\"http://x\")")])
    assert run("ingest", str(src), "--db", db).exit_code == 0
    out = tmp_path / "q_export.csv"
    res = run("quarantine", "--db", db, "--export", str(out), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["total"] == 1
    text = out.read_text()
    assert "bad_date" in text and "\n" in text
    assert ",=" not in text  # no cell starts with a formula character


def test_bad_input_exits_nonzero_with_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "g.csv"
    garbage.write_bytes(b"\x00\xff\x10" * 50)
    res = run("ingest", str(garbage), "--db", str(tmp_path / "x.duckdb"))
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "binary" in res.stderr
    res = run("ingest", str(tmp_path / "missing.csv"), "--db", str(tmp_path / "x.duckdb"))
    assert res.exit_code == 2 and "no such file" in res.stderr
    bad_map = tmp_path / "m.toml"
    bad_map.write_text("name = \n")
    res = run("ingest", str(garbage), "--mapping", str(bad_map), "--db", str(tmp_path / "x.duckdb"))
    assert res.exit_code == 2 and "line 1" in res.stderr
    res = run("info", "--db", str(tmp_path / "nothing.duckdb"))
    assert res.exit_code == 2 and "no such store" in res.stderr


def test_presets_listed() -> None:
    res = run("presets", "--json")
    assert res.exit_code == 0 and "toronto_mci" in json.loads(res.stdout)
