"""``crimelens report`` and the scheduled weekly report emailed with its PDF to a real SMTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.exceptions import InputError
from crimelens.notify.email import SmtpConfig
from crimelens.notify.monitor import AlertMonitor
from crimelens.reports import ReportSpec
from crimelens.reports.scheduler import ScheduleConfig, build_scheduler, email_report
from crimelens.store.duckdb import DuckDBStore

from ..notify.conftest import smtp_server  # noqa: F401  # fixture

runner = CliRunner()


def test_report_command_writes_html_and_pdf(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "custom.html"
    res = runner.invoke(app, ["report", "--type", "custom", "--category", "burglary", "--from", "2022-10-01",
                              "--to", "2022-12-01", "--forecast-model", "none", "--out", str(out),
                              "--db", str(store_path), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["period"] == "2022-10-01 to 2022-11-30" and Path(payload["out"]).exists()
    assert "burglary" in out.read_text(encoding="utf-8")
    bad = runner.invoke(app, ["report", "--out", str(tmp_path / "r.docx"), "--db", str(store_path)])
    assert bad.exit_code == 2 and ".pdf or .html" in bad.output


def test_scheduler_has_the_three_jobs_on_their_cron(store_path: Path) -> None:
    pytest.importorskip("apscheduler")
    store = DuckDBStore(store_path, read_only=True)
    try:
        sched = build_scheduler(ScheduleConfig(report_cron="30 6 * * MON", alert_scan_cron="*/15 * * * *",
                                               timezone="Europe/London"), AlertMonitor(store))
        jobs = {j.id: j for j in sched.get_jobs()}
        assert set(jobs) == {"alert-scan", "outbox", "weekly-report"}
        sched.start(paused=True)
        nxt = sched.get_job("weekly-report").next_run_time
        assert nxt.weekday() == 0 and (nxt.hour, nxt.minute) == (6, 30) and str(nxt.tzinfo) == "Europe/London"
        assert sched.get_job("alert-scan").next_run_time.minute % 15 == 0
        sched.shutdown(wait=False)
        with pytest.raises(InputError, match="cron"):
            build_scheduler(ScheduleConfig(report_cron="every monday"), AlertMonitor(store))
    finally:
        store.close()


def test_weekly_report_is_emailed_with_the_pdf(store_path: Path, tmp_path: Path, smtp_server) -> None:  # noqa: F811
    pytest.importorskip("weasyprint")
    store = DuckDBStore(store_path)  # writable: the outbox lives in the store
    try:
        mon = AlertMonitor(store, smtp=SmtpConfig(host="127.0.0.1", port=smtp_server.port))
        path = email_report(mon, ReportSpec(type="compstat", forecast_model=None), out_dir=tmp_path,
                            recipients=("chief@example.org",))
        smtp_server.inbox.wait(1)
        msg = smtp_server.inbox.messages[0]
        assert "CompStat" in msg["Subject"]
        pdfs = [p for p in msg.walk() if p.get_content_type() == "application/pdf"]
        assert len(pdfs) == 1 and pdfs[0].get_filename() == path.name
        assert pdfs[0].get_payload(decode=True) == path.read_bytes()
        assert mon.outbox.counts() == {"sent": 1}
    finally:
        store.close()
