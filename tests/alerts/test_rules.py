"""User rules (series, watch, threshold), subscriptions, de-duplication and feedback precision."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.alerts import Alert, RuleBook, deduplicate, evaluate_rule, precision_over_time
from crimelens.alerts.rules import Rule, Subscription
from crimelens.alerts.series import find_series
from crimelens.exceptions import InputError
from crimelens.schema import INCIDENT_COLUMNS, empty_incidents, validate
from crimelens.taxonomy import BY_NAME

NOW = pd.Timestamp("2024-03-10", tz="UTC")
X0, Y0 = 440_000.0, 4_630_000.0

BOOK = """
cooldown_hours = 48

[[rule]]
name = "burglary series"
type = "series"
categories = ["burglary"]
min_count = 3
radius_m = 400
days = 7

[[rule]]
name = "any homicide"
type = "watch"
categories = ["homicide"]
severity = "critical"

[[rule]]
name = "district 004 robbery"
type = "threshold"
categories = ["robbery"]
area_level = "district"
areas = ["004"]
min_count = 4
days = 7

[[subscription]]
name = "burglary team"
email = ["burglary@example.org"]
categories = ["property"]
area_level = "district"
areas = ["001"]
min_severity = "medium"

[[subscription]]
name = "violence desk"
webhooks = ["https://hooks.example.org/violence"]
categories = ["violent"]
kinds = ["watch", "spike"]
"""


def incidents(rows: list[tuple[str, float, float, float, str]]) -> pd.DataFrame:
    """(category, dx metres, dy metres, days before NOW, district) -> a valid canonical frame."""
    n = len(rows)
    df = empty_incidents().reindex(range(n))
    cats = [r[0] for r in rows]
    df["source"] = "t"
    df["incident_id"] = [f"r{i}" for i in range(n)]
    df["occurred_at"] = [NOW - pd.Timedelta(days=r[3]) for r in rows]
    df["time_precision"] = "minute"
    df["category"] = cats
    df["category_group"] = [BY_NAME[c].group for c in cats]
    df["category_precision"] = "leaf"
    df["crimes_against"] = [BY_NAME[c].crimes_against for c in cats]
    df["ucr_part1"] = [BY_NAME[c].ucr_part1 for c in cats]
    df["x"] = [X0 + r[1] for r in rows]
    df["y"] = [Y0 + r[2] for r in rows]
    df["lat"] = [41.8 + r[2] / 111_000 for r in rows]
    df["lon"] = [-87.7 + r[1] / 83_000 for r in rows]
    df["crs"] = "EPSG:32616"
    df["location_precision"] = "exact"
    df["district"] = [r[4] for r in rows]
    df["discovery"] = "reported"
    df["has_narrative"] = False
    df["batch_id"] = "b"
    df["ingested_at"] = NOW
    df["row_hash"] = np.arange(n, dtype=np.int64)
    out = df[list(INCIDENT_COLUMNS)]
    validate(out)
    return out


@pytest.fixture
def book(tmp_path: Path) -> RuleBook:
    path = tmp_path / "rules.toml"
    path.write_text(BOOK)
    return RuleBook.load(path)


def test_rule_book_loads_and_round_trips_through_json(book: RuleBook, tmp_path: Path) -> None:
    assert [r.type for r in book.rules] == ["series", "watch", "threshold"]
    assert book.cooldown_hours == 48
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(book.to_dict()))
    assert RuleBook.load(path) == book


@pytest.mark.parametrize("bad", [
    '[[rule]]\nname = "x"\ntype = "series"\ncategories = ["burgalry"]',
    '[[rule]]\nname = "x"\ntype = "sometimes"\ncategories = ["burglary"]',
    '[[rule]]\nname = "x"\ntype = "series"\ncategories = ["burglary"]\nradius = 3',
    '[[subscription]]\nname = "s"\nwebhooks = ["ftp://x"]',
    '[[rule]]\nname = "x"\ntype = "watch"\ncategories = ["homicide"]\n'
    '[[rule]]\nname = "x"\ntype = "watch"\ncategories = ["rape"]',
    "not = [toml",
])
def test_bad_rule_books_are_input_errors(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    with pytest.raises(InputError):
        RuleBook.load(path)


def test_series_rule_finds_three_burglaries_within_400_m_and_7_days(book: RuleBook) -> None:
    frame = incidents([
        ("burglary", 0, 0, 1, "001"), ("burglary", 250, 100, 3, "001"), ("burglary", -150, 200, 5, "002"),
        ("burglary", 5000, 5000, 2, "003"), ("burglary", 5300, 5000, 4, "003"),  # only two: no series
        ("burglary", 100, 0, 9, "001"),  # too old
        ("theft", 50, 50, 1, "001"),  # another offence
    ])
    alerts = evaluate_rule(book.rules[0], frame, NOW)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.kind == "series" and a.observed == 3 and a.area == "001"
    assert sorted(a.incident_ids) == ["t:r0", "t:r1", "t:r2"]
    assert a.scores["span_m"] <= 2 * 400


def test_series_needs_the_points_to_be_close_not_chained() -> None:
    line = np.column_stack([np.arange(6) * 390.0, np.zeros(6)])  # each 390 m from the next
    assert [len(s) for s in find_series(line, 3, 400.0)] == [6]  # cores link a dense chain
    sparse = np.column_stack([np.arange(3) * 900.0, np.zeros(3)])
    assert find_series(sparse, 3, 400.0) == []


def test_watch_and_threshold_rules(book: RuleBook) -> None:
    frame = incidents([("homicide", 0, 0, 2, "007")] + [("robbery", i * 10.0, 0, i + 0.5, "004") for i in range(4)]
                      + [("robbery", 0, 0, 1, "005")] * 1)
    watch = evaluate_rule(book.rules[1], frame, NOW)
    assert [(a.kind, a.area, a.severity) for a in watch] == [("watch", "007", "critical")]
    thr = evaluate_rule(book.rules[2], frame, NOW)
    assert [(a.area, a.observed) for a in thr] == [("004", 4.0)]
    assert evaluate_rule(book.rules[2], frame.iloc[:4], NOW) == []


def test_subscriptions_match_category_groups_areas_kinds_and_severity(book: RuleBook) -> None:
    def alert(**kw: object) -> Alert:
        base = dict(kind="spike", area_level="district", area="001", category="burglary",
                    window_start=NOW - pd.Timedelta(days=7), window_end=NOW, observed=9.0, expected=2.0,
                    severity="high")
        base.update(kw)
        return Alert(**base)  # type: ignore[arg-type]

    names = lambda a: [s.name for s in book.recipients(a)]  # noqa: E731
    assert names(alert()) == ["burglary team"]
    assert names(alert(area="002")) == []
    assert names(alert(severity="low")) == []
    assert names(alert(category="robbery", area="009")) == ["violence desk"]
    assert names(alert(category="robbery", kind="threshold", area="009")) == []
    with pytest.raises(InputError):
        Subscription(name="x", areas=("001",))


def test_cool_down_suppresses_repeats_and_lets_escalations_through() -> None:
    t0 = NOW
    first = Alert(kind="spike", area_level="district", area="001", category="theft",
                  window_start=t0 - pd.Timedelta(days=7), window_end=t0, observed=10, expected=3, severity="medium")
    d0 = deduplicate([first], [], now=t0, cooldown_hours=72)
    assert len(d0.new) == 1
    stored = d0.new
    nextday = first.with_updates(window_start=first.window_start + pd.Timedelta(days=1),
                                 window_end=t0 + pd.Timedelta(days=1), alert_id="")
    nextday = Alert.from_dict({**nextday.to_dict(), "alert_id": ""})
    d1 = deduplicate([nextday], stored, now=t0 + pd.Timedelta(days=1), cooldown_hours=72)
    assert (len(d1.new), len(d1.updated), len(d1.suppressed)) == (0, 0, 1)
    worse = Alert.from_dict({**nextday.to_dict(), "severity": "critical"})
    d2 = deduplicate([worse], stored, now=t0 + pd.Timedelta(days=1), cooldown_hours=72)
    assert len(d2.updated) == 1 and d2.updated[0].alert_id == stored[0].alert_id
    assert d2.updated[0].severity == "critical"
    later = deduplicate([nextday], stored, now=t0 + pd.Timedelta(days=4), cooldown_hours=72)
    assert len(later.new) == 1


def test_a_growing_series_updates_the_open_alert(book: RuleBook) -> None:
    three = incidents([("burglary", 0, 0, 3, "001"), ("burglary", 100, 0, 2, "001"), ("burglary", 0, 100, 1, "001")])
    four = pd.concat([three, incidents([("burglary", 50, 50, 0.5, "001")]).assign(incident_id="r9")],
                     ignore_index=True)
    a1 = evaluate_rule(book.rules[0], three, NOW)
    stored = deduplicate(a1, [], now=NOW).new
    a2 = evaluate_rule(book.rules[0], four, NOW)
    d = deduplicate(a2, stored, now=NOW + pd.Timedelta(hours=1))
    assert not d.new and len(d.updated) == 1
    assert d.updated[0].alert_id == stored[0].alert_id and d.updated[0].observed == 4
    again = deduplicate(a2, [d.updated[0]], now=NOW + pd.Timedelta(hours=2))
    assert len(again.suppressed) == 1


def test_precision_over_time_from_feedback() -> None:
    fb = pd.DataFrame({
        "created_at": pd.to_datetime(["2024-01-03", "2024-01-20", "2024-01-25", "2024-02-02", "2024-02-10"], utc=True),
        "label": ["true", "false", "true", "true", None],
        "method": ["nb", "nb", "rule", "nb", "nb"],
    })
    table = precision_over_time(fb, period="month")
    assert table["labelled"].tolist() == [3, 1]
    assert table["precision"].round(3).tolist() == [0.667, 1.0]
    assert table["cumulative_precision"].iloc[-1] == pytest.approx(3 / 4)
    assert (table["lower"] <= table["precision"]).all() and (table["upper"] >= table["precision"]).all()
    by = precision_over_time(fb, period="month", by="method")
    assert set(by["method"]) == {"nb", "rule"}
    with pytest.raises(InputError):
        precision_over_time(fb, period="fortnight")


def test_rules_reject_unknown_area_levels() -> None:
    with pytest.raises(InputError):
        Rule(name="x", type="threshold", categories=("theft",), area_level="planet")


def test_alert_round_trips_and_shows_its_window_in_local_time() -> None:
    start = pd.Timestamp("2024-03-04", tz="America/Chicago")
    a = Alert(kind="spike", area_level="district", area="004", category="robbery", window_start=start,
              window_end=pd.Timestamp("2024-03-11", tz="America/Chicago"), observed=12, expected=3.2, p_value=1e-5,
              q_value=2e-3,
              severity="high", timezone="America/Chicago", incident_ids=["s:1"], scores={"ewma_z": 2.5})
    d = a.to_dict()
    assert d["window_start"] == "2024-03-04T00:00:00-06:00" and d["window_end"].endswith("-05:00")  # DST
    assert a.span() == "2024-03-04–2024-03-10"
    back = Alert.from_dict(json.loads(json.dumps(d)))
    assert back == a and back.alert_id == a.alert_id
