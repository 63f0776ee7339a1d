"""SEC-14: the safe fetcher against a real local HTTPS server."""

from __future__ import annotations

import ipaddress
import re
import time
from http.server import BaseHTTPRequestHandler

import pytest

from crimelens.connectors.fetch import (
    USER_AGENT,
    Fetcher,
    FetchError,
    URLRefused,
    host_allowed,
    public_address,
    redact_url,
)
from tests.connectors.conftest import Request, Server

# -- refused before any connection ----------------------------------------------------------------


@pytest.mark.parametrize("url, reason", [
    ("https://127.0.0.1/", "127.0.0.1, which is not a public address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254, which is not a public address"),
    ("https://[::1]/", "::1, which is not a public address"),
    ("https://[::ffff:169.254.169.254]/", "not a public address"),
    ("https://localhost/", "localhost resolves to 127.0.0.1"),
    ("http://example.org/", "only https:// URLs"),
    ("file:///etc/passwd", "only https:// URLs"),
    ("ftp://example.org/x.csv", "only https:// URLs"),
    ("data:text/plain,hello", "only https:// URLs"),
    ("https://user:pw@example.org/", "user name or password"),
    ("https://not-listed.example.net/", "not on the fetch allow-list"),
])
def test_refused_urls(url: str, reason: str) -> None:
    hosts = ("127.0.0.1", "169.254.169.254", "::1", "::ffff:169.254.169.254", "localhost", "example.org")
    fetcher = Fetcher(allow_hosts=hosts)  # the real policy: no private exemption
    with pytest.raises(URLRefused, match=re.escape(reason)):
        fetcher.get(url)


def test_any_private_address_refuses_the_host() -> None:
    answers = {"mixed.example.org": ["93.184.216.34", "10.1.2.3"]}
    fetcher = Fetcher(allow_hosts=("mixed.example.org",), resolver=lambda host, port: answers[host])
    with pytest.raises(URLRefused, match=re.escape("10.1.2.3")):
        fetcher.get("https://mixed.example.org/data.json")


def test_empty_allow_list_allows_nothing() -> None:
    with pytest.raises(URLRefused, match="allow-list"):
        Fetcher(allow_hosts=()).get("https://data.cityofchicago.org/resource/x.json")


def test_allow_list_matching() -> None:
    assert host_allowed("data.police.uk", ["data.police.uk"])
    assert host_allowed("Data.Police.UK.", ["data.police.uk"])
    assert host_allowed("services1.arcgis.com", ["*.arcgis.com"])
    assert not host_allowed("arcgis.com", ["*.arcgis.com"])
    assert not host_allowed("evilarcgis.com", ["*.arcgis.com"])
    assert not host_allowed("data.police.uk.evil.com", ["data.police.uk"])
    assert not host_allowed("anything", [])


@pytest.mark.parametrize("addr, ok", [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("239.255.255.250", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:8.8.8.8", True), ("2002:a9fe:a9fe::1", False),
    ("64:ff9b::a9fe:a9fe", False), ("fd00:ec2::254", False),
])
def test_public_address(addr: str, ok: bool) -> None:
    assert public_address(ipaddress.ip_address(addr)) is ok


def test_redact_url_hides_tokens() -> None:
    shown = redact_url("https://h/resource/x.json?$limit=5&$$app_token=SECRET&api_key=K2&where=1")
    assert "SECRET" not in shown and "K2" not in shown and "$limit=5" in shown and "where=1" in shown


# -- against the local server ---------------------------------------------------------------------


def test_fetch_ok_pins_ip_and_verifies_hostname(server: Server) -> None:
    server.routes["/ok"] = lambda req, h: (200, {"Content-Type": "application/json"}, b'{"ok": true}')
    resp = server.fetcher().get(server.url("/ok"), params={"a": "1"})
    assert resp.status == 200 and resp.json() == {"ok": True}
    seen = server.seen[-1]
    assert seen.query == {"a": "1"} and seen.headers["host"] == f"localhost:{server.port}"
    assert seen.headers["user-agent"] == USER_AGENT and "crimelens" in USER_AGENT


def test_certificate_is_verified(server: Server) -> None:
    server.routes["/ok"] = lambda req, h: (200, {}, b"ok")
    with pytest.raises(FetchError, match="TLS verification failed"):  # the system store lacks the test CA
        Fetcher(allow_hosts=("localhost",), allow_private=True).get(server.url("/ok"))
    # a name the certificate does not carry, pinned to the same address, is refused too
    wrong = server.fetcher(hosts=("wrong.example.org",), resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(FetchError, match="TLS verification failed"):
        wrong.get(f"https://wrong.example.org:{server.port}/ok")


def test_resolved_once_per_hop(server: Server) -> None:
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:  # a rebinding resolver: public, then internal
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["169.254.169.254"]

    server.routes["/ok"] = lambda req, h: (200, {}, b"pinned")
    f = server.fetcher(resolver=resolver)
    assert f.get(server.url("/ok")).body == b"pinned" and calls == ["localhost"]
    with pytest.raises(URLRefused, match=re.escape("169.254.169.254")):
        f.get(server.url("/ok"))


@pytest.mark.parametrize("target, reason", [
    ("https://169.254.169.254/latest/meta-data/iam/", "169.254.169.254, which is not a public address"),
    ("https://127.0.0.2:{port}/ok", "127.0.0.2, which is not a public address"),
    ("https://10.0.0.7/admin", "10.0.0.7, which is not a public address"),
    ("http://localhost:{port}/ok", "only https:// URLs"),
    ("file:///etc/passwd", "only https:// URLs"),
    ("https://elsewhere.example.net/", "not on the fetch allow-list"),
])
def test_redirect_to_internal_is_refused(server: Server, target: str, reason: str) -> None:
    location = target.format(port=server.port)
    server.routes["/go"] = lambda req, h: (302, {"Location": location}, b"")
    f = server.fetcher(hosts=("localhost", "127.0.0.1", "127.0.0.2", "169.254.169.254", "10.0.0.7"))
    with pytest.raises(URLRefused, match=re.escape(reason)):
        f.get(server.url("/go"))
    assert [r.path for r in server.seen] == ["/go"]  # the first hop was served; the target never contacted


def test_redirects_followed_and_capped_and_tokens_dropped(server: Server) -> None:
    server.routes["/a"] = lambda req, h: (301, {"Location": "/b"}, b"")
    server.routes["/b"] = lambda req, h: (307, {"Location": f"https://127.0.0.1:{server.port}/c"}, b"")
    server.routes["/c"] = lambda req, h: (200, {}, b"done")
    resp = server.fetcher().get(server.url("/a"), headers={"X-App-Token": "SECRET"})
    assert resp.body == b"done" and resp.url.endswith("/c")
    by_path = {r.path: r for r in server.seen}
    assert by_path["/b"].headers.get("x-app-token") == "SECRET"  # same host keeps it
    assert "x-app-token" not in by_path["/c"].headers  # another host never gets it
    server.routes["/loop"] = lambda req, h: (302, {"Location": "/loop"}, b"")
    with pytest.raises(FetchError, match="more than 5 redirects"):
        server.fetcher().get(server.url("/loop"))
    assert sum(r.path == "/loop" for r in server.seen) == 6


def test_http_errors_are_one_line(server: Server) -> None:
    server.routes["/e"] = lambda req, h: (503, {}, b"Service Unavailable\nstack...")
    with pytest.raises(FetchError, match=r"HTTP 503 \(Service Unavailable\)$"):
        server.fetcher().get(server.url("/e"))


def test_size_cap_with_and_without_content_length(server: Server) -> None:
    big = b"x" * 300_000
    server.routes["/big"] = lambda req, h: (200, {}, big)

    def stream(req: Request, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            for _ in range(100):
                h.wfile.write(b"y" * 10_000)
        except OSError:
            pass  # the client hung up, as it should

    server.routes["/stream"] = stream
    f = server.fetcher(max_bytes=100_000)
    with pytest.raises(FetchError, match="exceeds the 100,000-byte limit"):
        f.get(server.url("/big"))
    with pytest.raises(FetchError, match="exceeds the 100,000-byte limit"):
        f.get(server.url("/stream"))
    assert len(server.fetcher(max_bytes=300_000).get(server.url("/big")).body) == 300_000


def test_total_time_limit_on_a_slow_endpoint(server: Server) -> None:
    def drip(req: Request, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            for _ in range(60):  # one byte every 0.1 s: never idle long enough for a read timeout
                h.wfile.write(b".")
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass

    def stall(req: Request, h: BaseHTTPRequestHandler) -> None:
        time.sleep(3)  # no headers at all

    server.routes["/drip"] = drip
    server.routes["/stall"] = stall
    f = server.fetcher(timeout_s=0.8)
    for path in ("/drip", "/stall"):
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"timed out after 0\.8 s"):
            f.get(server.url(path))
        assert time.monotonic() - started < 2.0
