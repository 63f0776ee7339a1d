"""MQTT: QoS 1 with a persistent session and acknowledgements after commit (``paho-mqtt`` 2.x).

The consumer connects with MQTT 5, client id ``options.durable``, ``clean_start=False`` and a
session expiry (``options.session_expiry``), so the broker keeps its subscription and queues QoS 1
messages while it is away. paho runs in *manual ack* mode: a message's PUBACK is sent only after
its micro-batch committed. Until then the broker holds it as in flight and sends it again (DUP)
when the session resumes, so a killed consumer loses nothing; the redelivered records count as
duplicates. The receive maximum asks the broker for up to one micro-batch in flight at a time.

A message's position is its packet identifier (16-bit, reused by the broker; quarantine rows also
carry the topic). The client reconnects by itself, waiting 1 s doubling to ``reconnect_max``;
messages received on a connection that dropped cannot be acknowledged on the next one, so they
are left for the broker to resend.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from crimelens.stream.broker import StreamError, safe_url
from crimelens.stream.records import Message

if TYPE_CHECKING:
    from crimelens.stream.options import StreamOptions

log = logging.getLogger("crimelens.stream")
_RECEIVE_MAX = 65_535


@dataclass(frozen=True, slots=True)
class _Delivery:
    generation: int
    message: mqtt.MQTTMessage


class MqttBroker:
    """A QoS 1 subscription to ``options.topic`` in a persistent session."""

    scheme = "mqtt"

    def __init__(self, options: StreamOptions) -> None:
        self.options = options
        self.where = options.topic
        if not self.where:
            raise StreamError("give the MQTT topic as the URL's path: mqtt://host:1883/TOPIC")
        parts = urlsplit(options.url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self._tls = parts.scheme == "mqtts"
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._inbox: queue.Queue[_Delivery] = queue.Queue()
        self._generation = 0
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self._client: mqtt.Client | None = None

    # -- paho callbacks (its network thread) ---------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = f"connection refused: {reason}"
            self._connected.set()
            return
        self._generation += 1
        log.info("mqtt: connected to %s (session present: %s)", safe_url(self.options.url),
                 getattr(flags, "session_present", None))
        try:
            client.subscribe(self.where, qos=1)
        except ValueError as exc:
            self._refused = f"invalid topic {self.where!r} ({exc})"
        self._connected.set()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, reasons: list[Any], _p: Any) -> None:
        bad = [r for r in reasons if r.is_failure or r.value < 1]
        if bad:
            self._refused = f"subscription to {self.where!r} refused or below QoS 1 ({bad[0]})"
        self._subscribed.set()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put(_Delivery(self._generation, msg))

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt: connection lost (%s); reconnecting with backoff", reason)

    # -- the Broker protocol -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect (persistent session), subscribe at QoS 1, and wait for both to be confirmed."""
        await asyncio.to_thread(self._open)

    def _open(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho is untyped here
        props.SessionExpiryInterval = int(self.options.session_expiry)
        props.ReceiveMaximum = min(max(self.options.batch, 1), _RECEIVE_MAX)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.options.durable,
                             protocol=MQTTProtocolVersion.MQTTv5, manual_ack=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(1, max(1, int(self.options.reconnect_max)))
        if self._user is not None:
            client.username_pw_set(self._user, self._password)
        if self._tls:
            client.tls_set()
        where = safe_url(self.options.url)
        try:
            client.connect(self._host, self._port, keepalive=30, clean_start=False, properties=props)
        except (OSError, ValueError) as exc:
            raise StreamError(f"cannot reach MQTT at {where} ({type(exc).__name__}: {exc})") from exc
        self._client = client
        client.loop_start()
        limit = self.options.connect_timeout + 1
        if not self._connected.wait(limit) or self._refused:
            self._stop()
            raise StreamError(f"MQTT at {where}: {self._refused or 'no CONNACK within ' + str(limit) + ' s'}")
        if not self._subscribed.wait(limit) or self._refused:
            self._stop()
            raise StreamError(f"MQTT at {where}: {self._refused or 'no SUBACK within ' + str(limit) + ' s'}")

    async def fetch(self, batch: int, max_wait: float) -> list[Message]:
        """Up to ``batch`` messages received, gathered for at most ``max_wait`` seconds."""
        out: list[Message] = []
        deadline = time.monotonic() + max_wait
        while len(out) < batch:
            try:
                d = self._inbox.get_nowait()
            except queue.Empty:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0.005)
                continue
            out.append(Message(d.message.mid, bytes(d.message.payload), d))
        return out

    async def ack(self, messages: list[Message]) -> None:
        """PUBACK each message received on the current connection (older ones are resent)."""
        assert self._client is not None, "open() first"
        stale = 0
        for m in messages:
            d: _Delivery = m.handle
            if d.generation != self._generation or d.message.qos == 0:
                stale += d.message.qos > 0
                continue
            if self._client.ack(d.message.mid, d.message.qos) != mqtt.MQTT_ERR_SUCCESS:
                stale += 1
        if stale:
            log.warning("mqtt: %d committed messages could not be acknowledged (connection dropped); "
                        "the broker resends them and they count as duplicates", stale)

    async def nak(self, messages: list[Message]) -> None:
        """MQTT has no negative ack: unacknowledged messages are resent when the session resumes."""

    async def in_progress(self, messages: list[Message]) -> None:
        """Nothing to do: an MQTT broker waits for the PUBACK without a deadline."""

    async def close(self) -> None:
        """Disconnect; the session (subscription, unacknowledged messages) stays on the broker."""
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
