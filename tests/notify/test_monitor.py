"""The monitor end to end: store counts in, alerts stored once, delivered, on the live feed, acknowledged."""

from __future__ import annotations

import json
import time
from typing import Any

import pandas as pd

from crimelens.alerts import RuleBook, SpikeDetector
from crimelens.alerts.rules import Subscription
from crimelens.notify.email import SmtpConfig
from crimelens.notify.monitor import AlertMonitor
from crimelens.store.duckdb import DuckDBStore

from .conftest import SECRET, Receiver, SmtpServer, canonical_city, load


def _monitor(store: DuckDBStore, receiver: Receiver, smtp: SmtpServer | None = None, **kw: Any) -> AlertMonitor:
    sub = Subscription(name="desk", webhooks=(receiver.url,), email=("desk@example.org",) if smtp else ())
    return AlertMonitor(store, detector=SpikeDetector(stl_score=False), default_subscription=sub,
                        webhook_secret=SECRET,
                        smtp=SmtpConfig(host="127.0.0.1", port=smtp.port) if smtp else None, **kw)


def test_scan_stores_delivers_publishes_and_does_not_repeat(receiver: Receiver, smtp_server: SmtpServer) -> None:
    frame, spike = canonical_city()
    store = DuckDBStore(":memory:")
    load(store, frame, "b1")
    events: list[tuple[str, dict[str, Any]]] = []
    mon = _monitor(store, receiver, smtp_server)
    mon.feed.subscribe(lambda kind, data: events.append((kind, data)))
    first = mon.scan()
    hit = [a for a in first.new if (a.area, a.category) == (spike.area, spike.category)]
    assert hit and hit[0].kind == "spike" and len(hit[0].incident_ids) == hit[0].observed
    assert first.dispatch is not None and not first.dispatch.failed
    assert {p["alert"]["alert_id"] for p in receiver.payloads()} == {a.alert_id for a in first.new}
    smtp_server.inbox.wait(len(first.new))
    assert any(spike.category in m["Subject"] for m in smtp_server.inbox.messages)
    assert [d["action"] for k, d in events if k == "alert"] == ["new"] * len(first.new)
    second = mon.scan()
    assert not second.new and second.suppressed == len(first.new)
    assert len(receiver.got) == len(first.new)
    stored = mon.tables.find(status="open")
    assert sorted(a.alert_id for a in stored) == sorted(a.alert_id for a in first.new)


def test_rules_in_a_scan_and_feedback_precision(receiver: Receiver) -> None:
    frame, _ = canonical_city(seed=6)
    store = DuckDBStore(":memory:")
    load(store, frame, "b1")
    book = RuleBook.from_dict({"rule": [{"name": "any homicide", "type": "watch", "categories": ["homicide"]}]})
    mon = _monitor(store, receiver, rules=book)
    res = mon.scan(deliver=False)
    watch = [a for a in res.new if a.kind == "watch"]
    last_week = frame[(frame["category"] == "homicide")
                      & (frame["occurred_at"] >= frame["occurred_at"].max().normalize() - pd.Timedelta(days=6))]
    assert len(watch) == len(last_week) > 0
    assert not receiver.got  # deliver=False: stored, not sent
    a, b = res.new[0], res.new[1]
    mon.acknowledge(a.alert_id[:8])
    assert mon.tables.get(a.alert_id).status == "acknowledged"  # type: ignore[union-attr]
    mon.acknowledge(a.alert_id, label="true", note="confirmed by the district")
    mon.acknowledge(b.alert_id, label="false")
    fb = mon.tables.feedback()
    assert sorted(fb["label"]) == ["false", "true"]
    from crimelens.alerts import precision_over_time

    assert precision_over_time(fb)["precision"].iloc[-1] == 0.5


def test_alert_is_out_within_seconds_of_arrival(receiver: Receiver) -> None:
    """Incidents arrive (stored, then handed to the monitor); the webhook receiver gets the alert."""
    frame, spike = canonical_city(seed=7, n_areas=20)
    cut = frame["occurred_at"].max() - pd.Timedelta(hours=30)
    store = DuckDBStore(":memory:")
    load(store, frame[frame["occurred_at"] < cut], "b1")
    mon = _monitor(store, receiver)
    mon.warm_up()
    latencies = []
    arrivals = frame[frame["occurred_at"] >= cut].sort_values("occurred_at")
    for i, chunk in enumerate([arrivals.iloc[j:j + 25] for j in range(0, len(arrivals), 25)]):
        batch = chunk.assign(batch_id=f"live{i}")
        load(store, batch, f"live{i}")
        before = len(receiver.got)
        t0 = time.perf_counter()
        res = mon.on_incidents(batch)
        if len(receiver.got) > before:
            latencies.append(receiver.got[-1].at - t0)
        assert res.seconds < 5
    hit = [p for p in receiver.payloads() if p["alert"]["category"] == spike.category
           and p["alert"]["area"] == spike.area]
    print(json.dumps({"arrival_to_webhook_ms": [round(1000 * x, 1) for x in latencies]}))
    assert hit, "the planted spike was not alerted on arrival"
    assert latencies and max(latencies) < 2.0


def test_from_settings_builds_delivery_config(tmp_path: Any, monkeypatch: Any) -> None:
    from crimelens.settings import Settings

    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "h"\ntype = "watch"\ncategories = ["homicide"]\n')
    monkeypatch.setenv("CRIMELENS_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CRIMELENS_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("CRIMELENS_WEBHOOK_SECRET", "k")
    monkeypatch.setenv("CRIMELENS_ALERT_RULES", str(rules))
    monkeypatch.setenv("CRIMELENS_ALERT_EMAIL_TO", "a@example.org, b@example.org")
    monkeypatch.setenv("CRIMELENS_ALERT_FDR", "0.01")
    store = DuckDBStore(":memory:")
    mon = AlertMonitor.from_settings(store, Settings())
    assert mon.smtp is not None and mon.smtp.password == "s3cret"
    assert mon.webhook_secret == "k"
    assert mon.detector.fdr == 0.01
    assert mon.rules.rules[0].name == "h"
    assert mon.default_subscription is not None and mon.default_subscription.email == ("a@example.org",
                                                                                        "b@example.org")


def test_windows_follow_the_sources_local_days(receiver: Receiver) -> None:
    """With the source recorded in Chicago time, windows run from local midnight to local midnight."""
    frame, spike = canonical_city(seed=8)
    store = DuckDBStore(":memory:")
    load(store, frame, "b1")
    store.set_source_crs("sim", "EPSG:32616", "America/Chicago")
    mon = _monitor(store, receiver)
    assert mon.zone() == "America/Chicago"
    res = mon.scan(deliver=False)
    assert res.scan is not None and res.scan.params["timezone"] == "America/Chicago"
    a = next(a for a in res.new if (a.area, a.category) == (spike.area, spike.category))
    local = a.window_start.tz_convert("America/Chicago")
    assert (local.hour, local.minute) == (0, 0)
    assert a.to_dict()["window_start"].endswith(("-06:00", "-05:00"))
    times = frame.set_index("incident_id")["occurred_at"]
    for i in a.incident_ids:
        assert a.window_start <= times[i.split(":", 1)[1]] < a.window_end
