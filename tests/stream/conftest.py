"""A real NATS JetStream server (127.0.0.1:4222 unless $CRIMELENS_NATS_URL), one fresh stream per test."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

NATS_URL = os.environ.get("CRIMELENS_NATS_URL", "nats://127.0.0.1:4222")


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), timeout=1):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class JetStream:
    """A stream made for one test."""

    url: str
    name: str
    subject: str

    def publish(self, bodies: list[bytes]) -> list[int]:
        """Publish ``bodies`` and return their stream sequences."""
        import nats

        async def go() -> list[int]:
            nc = await nats.connect(self.url)
            js = nc.jetstream()
            seqs = [(await js.publish(self.subject, b)).seq for b in bodies]
            await nc.close()
            return seqs

        return asyncio.run(go())

    def consumer(self, durable: str = "crimelens") -> Any:
        """The durable consumer's info (pending and unacknowledged counts)."""
        import nats

        async def go() -> Any:
            nc = await nats.connect(self.url)
            info = await nc.jetstream().consumer_info(self.name, durable)
            await nc.close()
            return info

        return asyncio.run(go())


@pytest.fixture
def jetstream() -> Iterator[JetStream]:
    """A uniquely named stream and subject, deleted after the test."""
    if not _reachable(NATS_URL):
        pytest.skip(f"no NATS server with JetStream at {NATS_URL} (start nats-server -js)")
    import nats

    tag = uuid.uuid4().hex[:12]
    js_stream = JetStream(NATS_URL, f"CLTEST_{tag}", f"crimelens.test.{tag}")

    async def create() -> None:
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().add_stream(name=js_stream.name, subjects=[js_stream.subject])
        await nc.close()

    async def delete() -> None:
        nc = await nats.connect(NATS_URL)
        await nc.jetstream().delete_stream(js_stream.name)
        await nc.close()

    asyncio.run(create())
    try:
        yield js_stream
    finally:
        asyncio.run(delete())


def socrata_record(i: int, **over: Any) -> dict[str, Any]:
    """One Chicago crime as the Socrata API gives it (JSON field names, booleans, a Point)."""
    lat, lon = 41.8835 + (i % 50) * 0.001, -87.6278 - (i % 40) * 0.001
    rec: dict[str, Any] = {
        "id": str(13_000_000 + i), "case_number": f"JH{100000 + i}",
        "date": f"2024-01-{1 + i % 28:02d}T{i % 24:02d}:30:00.000", "block": "001XX N STATE ST",
        "iucr": "0486", "primary_type": "BATTERY", "description": "DOMESTIC BATTERY SIMPLE",
        "location_description": "APARTMENT", "arrest": False, "domestic": True, "beat": "0111",
        "district": "001", "ward": "42", "community_area": "32", "fbi_code": "08B",
        "x_coordinate": "1176352", "y_coordinate": "1900860", "year": "2024",
        "updated_on": "2024-01-22T15:40:00.000", "latitude": f"{lat:.6f}", "longitude": f"{lon:.6f}",
        "location": {"type": "Point", "coordinates": [lon, lat]},
    }
    rec.update(over)
    return rec


def bodies(records: list[dict[str, Any]]) -> list[bytes]:
    """One JSON message per record."""
    return [json.dumps(r).encode() for r in records]


#: Messages no record can come from, and what each is quarantined as.
BAD_MESSAGES: list[tuple[bytes, list[str]]] = [
    (b"{not json", ["bad_json"]),
    (b"\xff\xfe\x00garbage", ["bad_json"]),
    (b"[1, \"two\"]", ["not_an_object", "not_an_object"]),
    (json.dumps(socrata_record(900, date="yesterday-ish")).encode(), ["bad_date"]),
    (json.dumps({k: v for k, v in socrata_record(901).items() if k != "id"}).encode(), ["missing_id"]),
]


MQTT_URL = os.environ.get("CRIMELENS_MQTT_URL", "mqtt://127.0.0.1:1883")
AMQP_URL = os.environ.get("CRIMELENS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")


@dataclass(frozen=True)
class MqttTopic:
    """A topic made for one test, and the client id of its persistent session."""

    base: str
    topic: str
    durable: str

    @property
    def url(self) -> str:
        """The consumer's URL (topic in the path)."""
        return f"{self.base}/{self.topic}"

    def publish(self, payloads: list[bytes]) -> None:
        """Publish ``payloads`` at QoS 1, waiting for each PUBACK."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        parts = urlsplit(self.base)
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        client.loop_start()
        try:
            for p in payloads:
                client.publish(self.topic, p, qos=1).wait_for_publish(10)
        finally:
            client.disconnect()
            client.loop_stop()

    def open_session(self) -> None:
        """Create the persistent session and its QoS 1 subscription (so messages queue for it)."""
        from crimelens.stream import StreamOptions
        from crimelens.stream.mqtt import MqttBroker

        broker = MqttBroker(StreamOptions(url=self.url, durable=self.durable, batch=500))

        async def go() -> None:
            await broker.open()
            await broker.close()

        asyncio.run(go())

    def end_session(self) -> None:
        """Remove the session from the broker (a clean start with no expiry)."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        parts = urlsplit(self.base)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.durable,
                             protocol=MQTTProtocolVersion.MQTTv5)
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, clean_start=True)
        client.loop_start()
        time.sleep(0.2)
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def mqtt_topic() -> Iterator[MqttTopic]:
    """A unique topic with a persistent session already subscribed to it."""
    if not _reachable("tcp://" + MQTT_URL.split("://", 1)[1]):
        pytest.skip(f"no MQTT broker at {MQTT_URL} (start mosquitto)")
    pytest.importorskip("paho.mqtt", reason="paho-mqtt is not installed (pip install 'crimelens[stream]')")
    tag = uuid.uuid4().hex[:12]
    topic = MqttTopic(MQTT_URL, f"crimelens/test/{tag}", f"cltest-{tag}")
    topic.open_session()
    try:
        yield topic
    finally:
        topic.end_session()


@dataclass(frozen=True)
class AmqpQueue:
    """A durable queue made for one test."""

    base: str
    name: str

    @property
    def url(self) -> str:
        """The consumer's URL (queue in the path)."""
        return f"{self.base}/{self.name}"

    def _run(self, fn: Any) -> Any:
        import aio_pika

        async def go() -> Any:
            conn = await aio_pika.connect(self.base + "/")
            try:
                return await fn(await conn.channel())
            finally:
                await conn.close()

        return asyncio.run(go())

    def publish(self, payloads: list[bytes]) -> None:
        """Publish ``payloads`` as persistent messages to the queue (default exchange)."""
        import aio_pika

        async def go(ch: Any) -> None:
            for p in payloads:
                await ch.default_exchange.publish(aio_pika.Message(p, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                                                  routing_key=self.name)

        self._run(go)

    def counts(self) -> tuple[int, int]:
        """(messages ready, consumers) on the queue."""
        async def go(ch: Any) -> tuple[int, int]:
            q = await ch.declare_queue(self.name, durable=True, passive=True)
            return q.declaration_result.message_count, q.declaration_result.consumer_count

        return self._run(go)  # type: ignore[no-any-return]


@pytest.fixture
def amqp_queue() -> Iterator[AmqpQueue]:
    """A unique durable queue, deleted after the test."""
    if not _reachable("tcp://" + AMQP_URL.split("@")[-1]):
        pytest.skip(f"no AMQP broker at {AMQP_URL.split('@')[-1]} (start rabbitmq-server)")
    pytest.importorskip("aio_pika", reason="aio-pika is not installed (pip install 'crimelens[stream]')")
    q = AmqpQueue(AMQP_URL, f"cltest_{uuid.uuid4().hex[:12]}")

    async def declare(ch: Any) -> None:
        await ch.declare_queue(q.name, durable=True)

    async def delete(ch: Any) -> None:
        await ch.queue_delete(q.name)

    q._run(declare)
    try:
        yield q
    finally:
        q._run(delete)
