"""A real NATS JetStream server (127.0.0.1:4222 unless $CRIMELENS_NATS_URL), one fresh stream per test."""

from __future__ import annotations

import asyncio
import json
import os
import socket
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
