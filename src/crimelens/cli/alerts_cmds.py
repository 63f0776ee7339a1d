"""``crimelens alerts scan | rules | list | ack``: spike and rule alerts from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    FromOpt,
    JsonOpt,
    SourceOpt,
    ToOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    make_filter,
)
from crimelens.exceptions import InputError

alerts_app = typer.Typer(name="alerts", help="Spike and series alerts: scan, rules, list, acknowledge.",
                         no_args_is_help=True)

AreaOpt = Annotated[list[str] | None, typer.Option("--area", help="Area value of --level (repeatable).")]
LevelOpt = Annotated[str, typer.Option("--level", help="Area level: district, beat, neighbourhood, ..., city.")]
ScanLevelOpt = Annotated[str | None, typer.Option(
    "--level", help="Area level: district, beat, neighbourhood, h3_8, ..., city [default: district where "
    "incidents have districts, else h3_8].")]
RulesOpt = Annotated[Path | None, typer.Option("--rules", help="Rule book (TOML/JSON) [default: settings].")]
FIELDS = ("alert_id", "kind", "area_level", "area", "category", "window_start", "window_end", "observed", "expected",
          "lower", "upper", "p_value", "q_value", "severity", "method", "rule", "status", "incident_ids", "scores")


def _monitor(store: Any, rules: Path | None, **overrides: Any) -> Any:
    from crimelens.alerts import RuleBook
    from crimelens.notify.monitor import AlertMonitor
    from crimelens.settings import Settings

    if rules is not None:
        overrides["rules"] = RuleBook.load(rules)
    return AlertMonitor.from_settings(store, Settings(), **overrides)


def _row(a: Any) -> dict[str, Any]:
    d = a.to_dict()
    return {k: d[k] for k in FIELDS}


def _last_day(window_end: str) -> str:
    """The last local day of a window whose exclusive end is ``window_end`` (ISO with offset)."""
    return f"{pd.Timestamp(window_end) - pd.Timedelta(seconds=1):%Y-%m-%d}"


def _human(alerts: list[dict[str, Any]]) -> str:
    if not alerts:
        return "no alerts"
    lines = []
    for a in alerts:
        exp = "" if a["expected"] is None else f" vs {a['expected']:.1f} expected"
        p = "" if a["p_value"] is None else f" p={a['p_value']:.2g} q={a['q_value']:.2g}"
        lines.append(f"{a['alert_id']}  {a['severity']:<8} {a['kind']:<9} {a['area_level']} {a['area']:<8} "
                     f"{a['category']:<20} {a['window_start'][:10]}..{_last_day(a['window_end'])}  "
                     f"{a['observed']:.0f}{exp}{p}")
    return "\n".join(lines)


@alerts_app.command("scan")
def scan(
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    area: AreaOpt = None,
    level: ScanLevelOpt = None,
    window: Annotated[list[int] | None, typer.Option("--window", help="Window length in days (repeatable).")] = None,
    method: Annotated[str, typer.Option(help="nb, ewma or cusum.")] = "nb",
    fdr: Annotated[float | None, typer.Option(help="False discovery rate [default: settings, 0.05].")] = None,
    step: Annotated[int | None, typer.Option(help="With --from: days between scans [default: the window].")] = None,
    rules: RulesOpt = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Store new alerts (single scans).")] = True,
    notify: Annotated[bool, typer.Option("--notify", help="Deliver new alerts to subscriptions now.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Scan the windows ending at --to (default: the last day with data); with --from, every --step days."""
    from crimelens.alerts import SpikeDetector
    from crimelens.alerts.levels import choose_level
    from crimelens.settings import Settings
    from crimelens.store import connect

    flt = make_filter(start, end, category, source)
    if area and level == "city":
        fail("--area needs an area --level (district, beat, ...), not city")
    with errors_to_exit():
        settings = Settings()
        det = SpikeDetector(window_days=tuple(window or (settings.alert_window_days,)), method=method,  # type: ignore[arg-type]
                            fdr=fdr if fdr is not None else settings.alert_fdr)
        retro = flt.start is not None
        writes = save and not retro
        store = connect(db_url(db), read_only=not writes)
        try:
            level, why = choose_level(store, type(flt)(categories=flt.categories, sources=flt.sources), level)
            if not as_json:  # the JSON rows carry it as area_level
                typer.echo(f"level: {level} ({why})", err=True)
            if area:
                if level == "city":
                    raise InputError("--area needs an area --level; the incidents have no area level")
                flt = type(flt)(start=flt.start, end=flt.end, categories=flt.categories, sources=flt.sources,
                                areas={level: tuple(area)})
            mon = _monitor(store, rules, detector=det, area_level=level)
            scan_flt = type(flt)(categories=flt.categories, sources=flt.sources, areas=flt.areas)
            stop = mon.last_day_end(scan_flt) if flt.end is None else mon.local_end(flt.end, scan_flt)
            if stop is None:
                raise InputError("the store holds no incidents")
            if flt.start is not None:
                zone = mon.zone(scan_flt)
                first = pd.Timestamp(flt.start).normalize() + pd.Timedelta(days=max(det.window_days))
                last = stop.tz_convert(zone).tz_localize(None)
                ends = list(pd.date_range(first, last, freq=f"{step or max(det.window_days)}D")) or [last]
                found = []
                for e in ends:  # local dates: each scan ends at that local midnight
                    found.extend(mon.scan(end=e, flt=scan_flt, save=False).new)
            else:
                res = mon.scan(end=stop, flt=scan_flt, save=writes, deliver=notify)
                found = res.new + res.updated if writes else res.new
        finally:
            store.close()
    rows = [_row(a) for a in found]
    emit(rows, as_json, _human(rows))


@alerts_app.command("rules")
def rules_cmd(
    rules: RulesOpt = None,
    run: Annotated[bool, typer.Option("--run", help="Evaluate the rules on the latest data (nothing stored).")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show (and check) the rule book; with --run, the alerts its rules raise now."""
    from crimelens.alerts import RuleBook
    from crimelens.settings import Settings

    with errors_to_exit():
        path = rules or Settings().alert_rules
        if path is None:
            raise InputError("no rule book: give --rules FILE or set CRIMELENS_ALERT_RULES")
        book = RuleBook.load(path)
        payload: dict[str, Any] = {"source": str(path), **book.to_dict()}
        if run:
            from crimelens.alerts import evaluate_rules
            from crimelens.store import connect

            store = connect(db_url(db), read_only=True)
            try:
                mon = _monitor(store, path)
                stop = mon.last_day_end()
                if stop is None:
                    raise InputError("the store holds no incidents")
                horizon = max((r.days for r in book.rules), default=7)
                recent = mon.recent_incidents(stop - pd.Timedelta(days=horizon), stop)
                payload["alerts"] = [_row(a) for a in evaluate_rules(book, recent, stop, tz=mon.zone())]
            finally:
                store.close()
    human = "\n".join(
        [f"rule book {payload['source']} (cool-down {book.cooldown_hours:g} h)"]
        + [f"  rule {r.name!r}: {r.type} {', '.join(r.categories)}" + (
            f" >= {r.min_count} within {r.radius_m:g} m and {r.days} days" if r.type == "series" else
            f" >= {r.min_count} in {r.days} days per {r.area_level}" if r.type == "threshold" else "")
           for r in book.rules]
        + [f"  subscription {s.name!r}: {len(s.email)} email, {len(s.webhooks)} webhooks, "
           f"min severity {s.min_severity}" for s in book.subscriptions]
        + ([_human(payload["alerts"])] if run else []))
    emit(payload, as_json, human)


@alerts_app.command("list")
def list_cmd(
    status: Annotated[str, typer.Option(help="open, acknowledged, resolved or all.")] = "open",
    kind: Annotated[str | None, typer.Option(help="spike, series, watch or threshold.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 100,
    deliveries: Annotated[bool, typer.Option("--deliveries", help="List outbox deliveries instead.")] = False,
    precision: Annotated[bool, typer.Option("--precision", help="Precision from feedback, by month.")] = False,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stored alerts (newest first), pending deliveries, or precision over time."""
    from crimelens.alerts import precision_over_time
    from crimelens.notify.outbox import Outbox
    from crimelens.notify.tables import AlertTables
    from crimelens.store import connect

    if status not in ("open", "acknowledged", "resolved", "all"):
        fail("--status must be open, acknowledged, resolved or all")
    with errors_to_exit():
        store: Any = connect(db_url(db), read_only=True)
        try:
            tables = AlertTables(store.con, create=False)
            present = tables.exists()
            if deliveries:
                frame = Outbox(tables).rows() if present else pd.DataFrame()
                rows: Any = frame.astype(str).to_dict("records")
                human = frame.to_string(index=False) if len(frame) else "no deliveries"
            elif precision:
                fb = tables.feedback() if present else pd.DataFrame(columns=["created_at", "label", "kind"])
                table = precision_over_time(fb, period="month")
                rows = table.astype(str).to_dict("records")
                human = table.to_string(index=False) if len(table) else "no labelled alerts yet"
            else:
                found = tables.find(status=None if status == "all" else status, kind=kind, limit=limit) \
                    if present else []
                rows = [_row(a) for a in found]
                human = _human(rows)
        finally:
            store.close()
    emit(rows, as_json, human)


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[str, typer.Argument(help="Alert id (or a unique prefix of 6+ characters).")],
    resolve: Annotated[bool, typer.Option("--resolve", help="Resolve instead of acknowledging.")] = False,
    label: Annotated[str | None, typer.Option(help="true (real) or false (false alarm); implies --resolve.")] = None,
    note: Annotated[str | None, typer.Option(help="Free-text note.")] = None,
    user: Annotated[str | None, typer.Option(help="Who acknowledges [default: $USER].")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Acknowledge or resolve an alert, with true/false-alarm feedback."""
    import getpass

    from crimelens.store import connect

    if label is not None and label not in ("true", "false"):
        fail("--label must be true or false")
    with errors_to_exit():
        store = connect(db_url(db))
        try:
            mon = _monitor(store, None)
            alert = mon.acknowledge(alert_id, resolve=resolve, label=label, note=note,
                                    username=user or getpass.getuser())
        finally:
            store.close()
    emit(_row(alert), as_json, f"{alert.alert_id}: {alert.status}" + (f" ({label} alarm)" if label else ""))


def register(app: typer.Typer) -> None:
    """Add ``crimelens alerts ...`` to ``app``."""
    app.add_typer(alerts_app, name="alerts")

