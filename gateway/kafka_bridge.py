"""Rubin's alert brokers speak Kafka; the platform's alert stream is NATS JetStream. This bridge
consumes Kafka topics and publishes each message's bytes, unchanged, on ``mephisto.alerts.<topic>``,
where the gateway decodes them (``rubin_alerts.py``: the Confluent wire format and every Rubin
schema; the JSON shape of ``alerts.py``) or dead-letters them with the reason.

    python -m gateway.kafka_bridge --bootstrap broker:9092 --topic alerts-simulated --group mephisto

At least once, nothing lost: a Kafka offset is committed only after JetStream acknowledged the
message, and each message carries ``Nats-Msg-Id`` = ``kafka:<topic>:<partition>:<offset>`` so a
message the bridge sends again after a crash (consumed, published, not yet committed) is dropped by
JetStream's duplicate window instead of fitted twice.

The Kafka client is aiokafka (``pip install -e ".[kafka]"``), chosen over confluent-kafka because
the platform is asyncio throughout and it needs no C library. **Not yet run against a Kafka
broker**: none can run on the machines this project is tested on (no image registry, no Apache
downloads). ``forward`` — everything between a consumed message and JetStream — is tested with a
real nats-server and Rubin's own sample packets; the consumer loop (``run``) only in how it fails
when no broker answers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Any, Protocol

from services.common.access import inbox_prefix
from services.common.bus import ALERTS, Bus
from services.common.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["KafkaMessage", "alert_subject", "forward", "run", "main"]

H_TOPIC, H_PARTITION, H_OFFSET = "Kafka-Topic", "Kafka-Partition", "Kafka-Offset"


class KafkaMessage(Protocol):
    """What the bridge reads of a consumed record (aiokafka's ``ConsumerRecord`` has these)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


def alert_subject(topic: str) -> str:
    """``mephisto.alerts.<topic>``: a Kafka topic name (letters, digits, ``.``, ``_``, ``-``) as one
    NATS token (a ``.`` would split it, and ``*``/``>`` are wildcards)."""
    token = re.sub(r"[^A-Za-z0-9_-]", "_", topic) or "_"
    return f"{ALERTS}.{token}"


async def forward(
    messages: AsyncIterable[KafkaMessage],
    bus: Bus,
    commit: Callable[[KafkaMessage], Awaitable[None]],
    stop: asyncio.Event | None = None,
) -> int:
    """Publish every message on its alert subject and then ``commit`` it; returns how many were
    forwarded. An empty message (a Kafka tombstone) is forwarded too: the gateway dead-letters it
    with a reason, so it is seen rather than silently skipped. A failed publish raises before the
    commit, so the message is consumed again after a restart."""
    n = 0
    async for msg in messages:
        await bus.js.publish(
            alert_subject(msg.topic),
            msg.value or b"",
            headers={
                "Nats-Msg-Id": f"kafka:{msg.topic}:{msg.partition}:{msg.offset}",
                H_TOPIC: msg.topic,
                H_PARTITION: str(msg.partition),
                H_OFFSET: str(msg.offset),
            },
        )
        await commit(msg)
        n += 1
        if stop is not None and stop.is_set():
            break
    return n


async def run(
    bootstrap: str,
    topics: list[str],
    group: str,
    nats_url: str,
    stop: asyncio.Event | None = None,
    nats_user: str = "",
    nats_password: str = "",
    **consumer_options: Any,
) -> int:
    """Consume ``topics`` from the Kafka cluster at ``bootstrap`` as consumer group ``group`` and
    forward them to NATS at ``nats_url`` until ``stop`` is set; with ``nats_user`` (NATS users of
    deploy/nats/auth.conf) as the ``pipeline`` role, which may publish alerts only.
    ``consumer_options`` go to ``aiokafka.AIOKafkaConsumer`` (TLS, SASL: what the broker asks)."""
    try:
        from aiokafka import AIOKafkaConsumer, TopicPartition
    except ImportError as exc:
        raise SystemExit('the Kafka bridge needs aiokafka: pip install -e ".[kafka]"') from exc

    bus = await Bus.connect(
        nats_url,
        "kafka-bridge",
        setup=not nats_user,  # the pipeline user may not create streams: a setup job did
        buckets=(),
        user=nats_user,
        password=nats_password,
        inbox_prefix=inbox_prefix("pipeline") if nats_user else "_INBOX",
    )
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,  # committed after JetStream's ack, in forward
        auto_offset_reset="earliest",
        **consumer_options,
    )
    try:
        await consumer.start()
    except Exception as exc:  # aiokafka raises KafkaConnectionError and friends: name the broker
        await bus.close()
        raise ConnectionError(f"Kafka bootstrap {bootstrap}: {exc}") from exc

    async def commit(msg: KafkaMessage) -> None:
        await consumer.commit({TopicPartition(msg.topic, msg.partition): msg.offset + 1})

    try:
        return await forward(consumer, bus, commit, stop)
    finally:
        await consumer.stop()
        await bus.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m gateway.kafka_bridge", description=__doc__.split("\n\n")[0])
    ap.add_argument("--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP", ""), help="host:port[,host:port]")
    ap.add_argument("--topic", action="append", default=[], help="a topic to consume (repeat for more)")
    ap.add_argument("--group", default=os.environ.get("KAFKA_GROUP", "mephisto"), help="Kafka consumer group")
    settings = Settings("pipeline")  # NATS_URL, NATS_USER, NATS_PASSWORD
    ap.add_argument("--nats", default=settings.nats_url, help="NATS server(s) (env NATS_URL)")
    args = ap.parse_args(argv)
    topics = args.topic or [t for t in os.environ.get("KAFKA_TOPICS", "").split(",") if t]
    if not args.bootstrap or not topics:
        ap.error("--bootstrap (or KAFKA_BOOTSTRAP) and --topic (or KAFKA_TOPICS) are required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s kafka-bridge %(levelname)s %(message)s")
    try:
        n = asyncio.run(
            run(args.bootstrap, topics, args.group, args.nats, None, settings.nats_user, settings.nats_password)
        )
    except ConnectionError as exc:
        log.error("%s", exc)
        return 2
    log.info("forwarded %d alerts", n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
