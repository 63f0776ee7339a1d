"""/metrics (token, route templates, store series), /livez and /readyz, the metrics port, JSON logs."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("prometheus_client")

from prometheus_client.parser import text_string_to_metric_families

from tests.service.conftest import SECRET_NAME, Env, make_env

TOKEN = "scrape-token-for-tests-0123456789"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Exposition text → {(sample name, sorted labels): value}."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def menv(template_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    monkeypatch.setenv("CRIMELENS_METRICS_TOKEN", TOKEN)
    yield from make_env(template_store, tmp_path)


def scrape(env: Env) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = env.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


def test_metrics_need_the_token(menv: Env) -> None:
    assert menv.client.get("/metrics").status_code == 401
    assert menv.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert menv.client.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    admin = menv.auth("admin")  # a session token is not the metrics token
    assert menv.client.get("/metrics", headers=admin).status_code == 401


def test_no_token_configured_means_no_metrics_route(template_store: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRIMELENS_METRICS_TOKEN", raising=False)
    for env in make_env(template_store, tmp_path):
        assert env.client.get("/metrics").status_code == 404
        assert env.client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


def test_requests_are_counted_by_route_template_and_status(menv: Env) -> None:
    key = ("crimelens_http_requests_total",
           (("method", "GET"), ("route", "/api/v1/incidents/{source}/{incident_id}"), ("status", "200")))
    before = scrape(menv).get(key, 0.0)
    h = menv.auth("analyst")
    for _ in range(3):
        assert menv.client.get(f"/api/v1/incidents/madison/M1?x={SECRET_NAME}", headers=h).status_code == 200
    assert menv.client.get("/api/v1/incidents/madison/M1").status_code == 401
    text = menv.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    got = samples(text)
    assert got[key] == before + 3
    unauth = key[0], (("method", "GET"), ("route", "/api/v1/incidents/{source}/{incident_id}"), ("status", "401"))
    assert got[unauth] >= 1
    hist = ("crimelens_http_request_duration_seconds_count",
            (("method", "GET"), ("route", "/api/v1/incidents/{source}/{incident_id}")))
    assert got[hist] >= before + 4
    assert "M1" not in text and "Zebulon" not in text and "madison/" not in text  # templates, never paths
    menv.client.request("BREW", "/api/v1/health")  # any method token: one bounded label value
    assert scrape(menv)[("crimelens_http_requests_total",
                         (("method", "OTHER"), ("route", "/api/v1/health"), ("status", "405")))] == 1
    menv.client.get("/no/such/path")
    assert scrape(menv)[("crimelens_http_requests_total",
                         (("method", "GET"), ("route", "<unmatched>"), ("status", "404")))] >= 1


def test_store_series_match_the_store(menv: Env) -> None:
    got = scrape(menv)
    store = menv.app.state.svc.rt
    incidents = store.query("SELECT count(*) FROM incidents")[0][0]
    by_reason = dict(store.query("SELECT reason, count(*) FROM quarantine GROUP BY 1"))
    files = store.query("SELECT count(*) FROM files")[0][0]
    assert got[("crimelens_ingest_rows_total", (("outcome", "stored"),))] == incidents
    assert got[("crimelens_ingest_rows_total", (("outcome", "quarantined"),))] == sum(by_reason.values())
    for reason, n in by_reason.items():
        assert got[("crimelens_quarantine_rows_total", (("reason", reason),))] == n
    assert got[("crimelens_ingest_files_total", ())] == files == 2
    assert got[("crimelens_rollup_age_seconds", ())] >= 0


def test_job_and_model_series(menv: Env) -> None:
    from crimelens.service import metrics

    metrics.job_finished("retrain", "ok", 2.0)  # the module-level hooks the scheduler and registry call
    metrics.job_finished("retrain", "failed", 1.0)
    metrics.model_scored("retro_kde", "v3", "hit_rate_5", 0.41)
    metrics.erasure_done("person")
    got = scrape(menv)
    assert got[("crimelens_erasures_total", (("kind", "person"),))] == 1
    assert got[("crimelens_job_runs_total", (("kind", "retrain"), ("outcome", "failed")))] == 1
    assert got[("crimelens_job_failures_total", (("kind", "retrain"),))] == 1
    assert got[("crimelens_job_duration_seconds_count", (("kind", "retrain"),))] == 2
    assert got[("crimelens_model_score", (("metric", "hit_rate_5"), ("model", "retro_kde"), ("version", "v3")))] \
        == pytest.approx(0.41)


def test_liveness_and_readiness(menv: Env) -> None:
    assert menv.client.get("/livez").json()["status"] == "ok"
    r = menv.client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"] == {"store": "ok"}
    assert "/livez" not in menv.client.get("/api/v1/openapi.json").json()["paths"]
    menv.app.state.svc.rt.close()  # the store is gone: not ready, but still alive
    r = menv.client.get("/readyz")
    assert r.status_code == 503 and r.json() == {**r.json(), "status": "not ready", "checks": {"store": "failed"}}
    assert menv.client.get("/livez").status_code == 200


def test_metrics_port_serves_without_token(template_store: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.delenv("CRIMELENS_METRICS_TOKEN", raising=False)
    monkeypatch.setenv("CRIMELENS_METRICS_PORT", str(port))
    for env in make_env(template_store, tmp_path):
        env.client.get("/api/v1/health")
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert r.status_code == 200
        assert samples(r.text)[("crimelens_http_requests_total",
                                (("method", "GET"), ("route", "/api/v1/health"), ("status", "200")))] >= 1
        assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404
        assert env.client.get("/metrics").status_code == 404  # not on the API port without a token
    with pytest.raises(httpx.ConnectError):  # stopped with the app
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)


def test_json_log_lines_are_allow_listed_and_drop_query_strings() -> None:
    from crimelens.service.logging_json import JsonFormatter

    fmt = JsonFormatter()
    access = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("10.1.2.3:5555", "GET", f"/api/v1/incidents?q={SECRET_NAME}", "1.1", 200), None)
    line = json.loads(fmt.format(access))
    assert line["path"] == "/api/v1/incidents" and line["status"] == 200 and line["method"] == "GET"
    assert SECRET_NAME not in json.dumps(line) and "10.1.2.3" not in json.dumps(line)
    rec = logging.LogRecord("crimelens.service", logging.WARNING, __file__, 1, "line\nbreak %s", ("x",), None)
    rec.request_id, rec.victim = "abc", SECRET_NAME  # an unlisted extra field is never written
    out = json.loads(fmt.format(rec))
    assert out["msg"] == "line\\x0abreak x" and out["request_id"] == "abc" and "victim" not in out
    try:
        raise ValueError(f"bad value {SECRET_NAME}")
    except ValueError:
        import sys

        err = logging.LogRecord("crimelens", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    text = fmt.format(err)
    assert json.loads(text)["error"] == "ValueError" and SECRET_NAME not in text


def test_configure_sends_service_logs_as_json() -> None:
    from crimelens.service.logging_json import configure

    buf = io.StringIO()
    handler = configure(stream=buf)
    try:
        logging.getLogger("crimelens.service.jobs").info("job %s done", "j1", extra={"job_id": "j1", "count": 3})
        line = json.loads(buf.getvalue().splitlines()[-1])
        assert line["logger"] == "crimelens.service.jobs" and line["job_id"] == "j1" and line["count"] == 3
    finally:
        for name in ("crimelens", "uvicorn", "uvicorn.error", "uvicorn.access"):
            logging.getLogger(name).removeHandler(handler)
            logging.getLogger(name).propagate = True


DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "crimelens.json"


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the example Grafana dashboard (panels and template queries)."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
    return exprs + [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]


def test_dashboard_uses_only_exported_metric_names(menv: Env) -> None:
    import re

    from crimelens.service import metrics

    metrics.job_finished("retrain", "failed", 1.0)  # the labelled series appear once observed
    metrics.model_scored("retro_kde", "v1", "hit_rate_5", 0.3)
    metrics.erasure_done("incident")
    menv.client.get("/api/v1/health")
    r = menv.client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    exported = set()
    for fam in text_string_to_metric_families(r.text):  # a family without samples yet still counts
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}.get(fam.type, ("",))
        exported |= {fam.name + s for s in suffixes} | {s.name for s in fam.samples}
    used = {m for e in dashboard_exprs() for m in re.findall(r"\bcrimelens_[a-z0-9_]+", e)}
    assert len(used) >= 10
    assert used <= exported, sorted(used - exported)
