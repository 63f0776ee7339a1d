"""Live ingest from NATS JetStream, MQTT or AMQP (needs the ``[stream]`` extra).

An adapter: :func:`consume` pulls micro-batches from a broker (picked by the URL's scheme), cleans
them with a mapping and loads each one atomically into a store, acknowledging its messages only
after the commit. See ``docs/stream.md`` for the message format and the delivery guarantees.
"""

from __future__ import annotations

from crimelens.exceptions import require_extra

require_extra("nats", "stream")

from crimelens.stream.consumer import (  # noqa: E402 -- after the extra check, for a clear error
    StreamError,
    StreamOptions,
    StreamSummary,
    consume,
    load_batch,
    open_broker,
)
from crimelens.stream.records import Message, decode, to_chunks  # noqa: E402

__all__ = ["Message", "StreamError", "StreamOptions", "StreamSummary", "consume", "decode", "load_batch",
           "open_broker", "to_chunks"]
