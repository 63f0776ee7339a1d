"""Loopback servers for delivery tests: a real SMTP server (aiosmtpd) and an HTTP webhook receiver
that verifies signatures, both on free ports of 127.0.0.1 and both able to simulate an outage."""

from __future__ import annotations

import contextlib
import email
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crimelens.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SECRET = "test-webhook-secret"


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Inbox:
    """Messages an SMTP server received."""

    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    def wait(self, n: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.02)


class SmtpServer:
    """aiosmtpd on a free loopback port; ``stop()``/``start()`` simulate an outage."""

    def __init__(self) -> None:
        self.port = free_port()
        self.inbox = Inbox()
        self._controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller

        inbox = self.inbox

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd API
                inbox.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                inbox.messages.append(email.message_from_bytes(envelope.original_content))
                return "250 OK"

        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    pytest.importorskip("aiosmtpd")
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    verified: bool
    at: float


class Receiver:
    """An HTTP endpoint that records POSTs, verifying the HMAC signature of each; ``down`` makes it answer 503."""

    def __init__(self) -> None:
        self.got: list[Received] = []
        self.down = False
        self.rejected = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if outer.down:
                    self.send_response(503)
                    self.end_headers()
                    return
                ok = verify(body, SECRET, self.headers.get(TIMESTAMP_HEADER, ""),
                            self.headers.get(SIGNATURE_HEADER, ""))
                if not ok:
                    outer.rejected += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                outer.got.append(Received(body, dict(self.headers.items()), ok, time.perf_counter()))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.got]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def canonical_city(seed: int = 5, n_areas: int = 6, days: int = 420) -> tuple[pd.DataFrame, Any]:
    """A canonical frame from the alert tests' simulator, with one planted spike in its last week."""
    from crimelens.alerts.evaluation import PlantedSpike, plant_spikes

    from ..alerts.conftest import incidents_from_panel, simulate

    city = simulate(seed, n_areas=n_areas, days=days, weekly_mean=(4.0, 30.0))
    keys = city.panel.keys
    spike = PlantedSpike(keys["area"][2], keys["category"][2], city.panel.end - pd.Timedelta(days=7), 4.0)
    panel = plant_spikes(city.panel, [spike], city.rate, np.random.default_rng(seed))
    return incidents_from_panel(panel, seed), spike


def load(store: Any, frame: pd.DataFrame, batch_id: str) -> None:
    """Append a canonical frame to a store as one batch."""
    from crimelens.schema import PERSONAL_SCHEMA, QUARANTINE_SCHEMA, to_arrow
    from crimelens.store.base import IngestReport

    frame = frame.assign(batch_id=batch_id)
    with store.batch("sim", "memory", batch_id, batch_id) as w:
        w.add(to_arrow(frame), PERSONAL_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
        w.commit(IngestReport(source="sim", file="memory", sha256=batch_id, batch_id=batch_id, read=len(frame)))
