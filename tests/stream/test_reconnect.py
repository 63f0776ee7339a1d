"""A broker that goes away and comes back, without stopping the shared servers.

A small asyncio TCP proxy (in the test) sits between the consumer and the real Mosquitto or
RabbitMQ; the test cuts every connection and refuses new ones for a while, publishes meanwhile
straight to the broker, then restores the proxy. The consumer must reconnect with backoff and the
store must hold every record exactly once (nothing acknowledged is lost, redeliveries are
duplicates).
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")

from crimelens.sources.mapping import load_preset
from crimelens.store import connect
from crimelens.stream import StreamOptions, StreamSummary, consume
from tests.conftest import TEST_KEY
from tests.stream.conftest import AmqpQueue, MqttTopic, bodies, socrata_record

pytestmark = pytest.mark.service
SOCRATA = load_preset("chicago_socrata")


class Proxy:
    """Forward 127.0.0.1:<port> to ``host:port``; :meth:`cut` drops everything, :meth:`restore` listens again."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.restore()

    async def _pipe(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            while data := await r.read(65536):
                w.write(data)
                await w.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection(*self.target)
        self.writers |= {w, uw}
        await asyncio.gather(self._pipe(r, uw), self._pipe(ur, w))

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()

    def restore(self) -> None:
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(5)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._cut(), self.loop).result(5)

    def close(self) -> None:
        self.cut()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(params=["mqtt", "amqp"])
def broker(request: pytest.FixtureRequest) -> MqttTopic | AmqpQueue:
    return request.getfixturevalue("mqtt_topic" if request.param == "mqtt" else "amqp_queue")  # type: ignore[no-any-return]


def test_consumer_reconnects_through_a_cut_and_loses_nothing(broker: MqttTopic | AmqpQueue, tmp_path: Path) -> None:
    parts = urlsplit(broker.url)
    proxy = Proxy(parts.hostname or "127.0.0.1", parts.port or (1883 if parts.scheme == "mqtt" else 5672))
    netloc = (parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else "") + f"127.0.0.1:{proxy.port}"
    url = urlunsplit(parts._replace(netloc=netloc))
    durable = broker.durable if isinstance(broker, MqttTopic) else "crimelens"
    broker.publish(bodies([socrata_record(i) for i in range(120)]))
    store = connect(str(tmp_path / "r.duckdb"))
    result: list[StreamSummary] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(consume(store, SOCRATA, StreamOptions(
                url=url, durable=durable, batch=20, max_wait=0.3, idle_exit=8.0, reconnect_max=1.0,
                connect_timeout=3.0), key=TEST_KEY))
        except BaseException as e:  # noqa: BLE001 -- reported by the assertion below
            errors.append(e)

    t = threading.Thread(target=run)
    try:
        t.start()
        time.sleep(1.0)
        proxy.cut()  # the broker "goes away"
        broker.publish(bodies([socrata_record(i) for i in range(120, 240)]))  # published meanwhile
        time.sleep(3.0)
        proxy.restore()  # ... and comes back
        t.join(90)
        assert not t.is_alive(), "consumer did not finish"
        assert not errors, f"consumer failed: {errors[0]!r}"
        summary = result[0]
        assert summary.balanced()
        ids = store.incidents(columns=["incident_id"])["incident_id"]
        assert len(ids) == ids.nunique() == 240  # every record, each once
        assert summary.stored == 240 and summary.read == 240 + summary.duplicates
    finally:
        proxy.close()
        store.close()
