"""The outbox: a delivery outage followed by recovery loses no alert, even across a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from crimelens.notify.email import SmtpConfig
from crimelens.notify.outbox import Dispatcher, Outbox, backoff
from crimelens.notify.tables import AlertTables
from crimelens.store.duckdb import DuckDBStore

from .conftest import SECRET, Receiver, SmtpServer

T0 = pd.Timestamp("2024-05-01 08:00", tz="UTC")


def _dispatcher(store: DuckDBStore, smtp: SmtpServer) -> Dispatcher:
    return Dispatcher(Outbox(AlertTables(store.con)), webhook_secret=SECRET, webhook_attempts=1,
                      smtp=SmtpConfig(host="127.0.0.1", port=smtp.port, timeout_s=2))


def test_backoff_doubles_and_is_capped() -> None:
    assert [backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert backoff(30).total_seconds() == 3600


def test_outage_then_recovery_loses_no_alert(tmp_path: Path, receiver: Receiver, smtp_server: SmtpServer) -> None:
    db = tmp_path / "store.duckdb"
    store = DuckDBStore(db)
    disp = _dispatcher(store, smtp_server)
    ids = [disp.outbox.enqueue("webhook", receiver.url, {"json": {"event": "alert.new", "n": i}},
                               alert_id=f"a{i}", now=T0) for i in range(6)]
    ids += [disp.outbox.enqueue("email", "desk@example.org", {"subject": f"alert {i}", "text": "t"},
                                alert_id=f"a{i}", now=T0) for i in range(3)]
    receiver.down = True
    smtp_server.stop()
    first = disp.run_once(T0)
    assert len(first.failed) == 9 and not first.sent and first.pending == 9
    again = disp.run_once(T0 + pd.Timedelta(seconds=5))  # nothing is due yet: backoff
    assert not again.sent and not again.failed
    log = AlertTables(store.con).query("SELECT count(*) AS n FROM alert_delivery_log WHERE NOT ok")
    assert int(log["n"].iloc[0]) == 9
    store.close()  # the process dies during the outage

    receiver.down = False
    smtp_server.start()
    store = DuckDBStore(db)  # ... and comes back
    disp = _dispatcher(store, smtp_server)
    done = disp.run_once(T0 + pd.Timedelta(minutes=2))
    assert sorted(done.sent) == sorted(ids) and done.pending == 0
    got = receiver.payloads()
    assert sorted(p["n"] for p in got) == list(range(6))
    assert {p["delivery_id"] for p in got} == set(ids[:6])
    smtp_server.inbox.wait(3)
    assert sorted(m["Subject"] for m in smtp_server.inbox.messages) == ["alert 0", "alert 1", "alert 2"]
    rows = disp.outbox.rows()
    assert set(rows["status"]) == {"sent"} and (rows["attempts"] == 2).all()
    store.close()


def test_a_long_outage_marks_deliveries_failing_but_keeps_them(tmp_path: Path, receiver: Receiver,
                                                               smtp_server: SmtpServer) -> None:
    store = DuckDBStore(tmp_path / "s.duckdb")
    disp = _dispatcher(store, smtp_server)
    did = disp.outbox.enqueue("webhook", receiver.url, {"json": {"x": 1}}, now=T0)
    receiver.down = True
    t = T0
    for _ in range(7):
        disp.run_once(t)
        t += pd.Timedelta(hours=2)
    assert disp.outbox.counts() == {"failing": 1}
    receiver.down = False
    assert disp.run_once(t).sent == [did]
    assert json.loads(receiver.got[0].body)["x"] == 1
    store.close()
