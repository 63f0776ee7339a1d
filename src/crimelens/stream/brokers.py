"""The broker factory: the broker class for a URL's scheme (its client library imported only then).

Kept apart from the consumer loop so that the loop, the broker classes and their options import
one way only (consumer -> brokers -> mqtt/amqp/jetstream -> options), without a cycle.
"""

from __future__ import annotations

from crimelens.stream.broker import Broker
from crimelens.stream.options import StreamOptions

__all__ = ["open_broker"]


def open_broker(options: StreamOptions) -> Broker:
    """The broker class for ``options.url`` (its client library is imported only then)."""
    kind = options.kind
    if kind == "mqtt":
        from crimelens.stream.mqtt import MqttBroker

        return MqttBroker(options)
    if kind == "amqp":
        from crimelens.stream.amqp import AmqpBroker

        return AmqpBroker(options)
    from crimelens.stream.jetstream import JetStreamBroker

    return JetStreamBroker(options)
