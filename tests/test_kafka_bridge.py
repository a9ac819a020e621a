"""The Kafka bridge (gateway/kafka_bridge.py) against a real nats-server: Rubin's own sample packets,
as a broker sends them, land unchanged on the alert stream, each Kafka offset committed only after
JetStream acknowledged it, a message sent again after a crash is not stored twice, and a tombstone
is passed on for the gateway to dead-letter. No Kafka broker can run here (see the module's
docstring): the consumer loop is checked only in how it fails when no broker answers."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import fastavro
import pytest

from gateway.alerts import BadAlert, parse_alert
from gateway.kafka_bridge import alert_subject, forward, main, run
from services.common.bus import ALERTS, STREAM_ALERTS, Bus
from services.platform import NatsServer

from .test_rubin_alerts import SAMPLES, _version, _wire, _with_photometry


@dataclass
class Record:  # the fields of aiokafka's ConsumerRecord the bridge reads
    topic: str
    partition: int
    offset: int
    value: bytes | None


@pytest.fixture
def nats_server(tmp_path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.cleanup()


def _packets() -> list[bytes]:
    """One packet per shipped schema version, in the Confluent wire format, with photometry."""
    out = {}
    for path in SAMPLES:
        with open(path, "rb") as f:
            record = next(iter(fastavro.reader(f)))
        out.setdefault(_version(path), _wire(_version(path), _with_photometry(_version(path), record)))
    return list(out.values())


def test_alert_subject_is_one_token():
    assert alert_subject("alerts-simulated") == f"{ALERTS}.alerts-simulated"
    assert alert_subject("lsst.alerts.v7") == f"{ALERTS}.lsst_alerts_v7"  # a dot would split the subject
    assert alert_subject("a*b>") == f"{ALERTS}.a_b_"


def test_forward_publishes_every_packet_unchanged_and_commits_after_the_ack(nats_server):
    packets = _packets()
    assert len(packets) >= 10
    records = [Record("alerts-simulated", i % 2, i, p) for i, p in enumerate(packets)]
    replayed = records[3]  # consumed again after a crash between JetStream's ack and the commit
    tombstone = Record("alerts-simulated", 0, len(records), None)
    stored_at_commit: list[tuple[int, int]] = []

    async def go() -> int:
        bus = await Bus.connect(nats_server.url, "test-bridge", buckets=())

        async def consumed():
            for r in [*records, replayed, tombstone]:
                yield r

        async def commit(r: Record) -> None:
            info = await bus.js.stream_info(STREAM_ALERTS)
            stored_at_commit.append((r.offset, info.state.messages))

        try:
            return await forward(consumed(), bus, commit)
        finally:
            await bus.close()

    assert asyncio.run(go()) == len(records) + 2
    # committed in order, each after its message was stored (the replay stored nothing new)
    assert [o for o, _ in stored_at_commit] == [r.offset for r in [*records, replayed, tombstone]]
    stored = [n for _, n in stored_at_commit]
    assert stored[: len(records)] == list(range(1, len(records) + 1))
    assert stored[len(records)] == len(records) and stored[-1] == len(records) + 1
    msgs = _stored(nats_server.url)
    assert len(msgs) == len(records) + 1
    for (subject, headers, data), r in zip(msgs, records):
        assert subject == f"{ALERTS}.alerts-simulated" and data == r.value
        assert headers["Kafka-Offset"] == str(r.offset) and headers["Kafka-Partition"] == str(r.partition)
        alert_id, obs = parse_alert(data)  # what the gateway does with it
        assert alert_id and {b.filter for b in obs.bands} <= {f"lsst.{b}" for b in "ugrizy"} and obs.bands
    assert msgs[-1][2] == b""
    with pytest.raises(BadAlert):  # the gateway dead-letters the tombstone with this reason
        parse_alert(msgs[-1][2])


def _stored(nats_url: str) -> list[tuple[str, dict[str, str], bytes]]:
    """The alert stream's messages by sequence (a work-queue stream: read without consuming)."""

    async def go() -> list[tuple[str, dict[str, str], bytes]]:
        import nats

        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        n = (await js.stream_info(STREAM_ALERTS)).state.messages
        out = []
        for seq in range(1, n + 1):
            m = await js.get_msg(STREAM_ALERTS, seq)
            out.append((m.subject, dict(m.headers or {}), m.data or b""))
        await nc.close()
        return out

    return asyncio.run(go())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_without_a_broker_the_bridge_names_it_and_exits(nats_server):
    pytest.importorskip("aiokafka", reason="the kafka extra (aiokafka) is not installed")
    bootstrap = f"127.0.0.1:{_closed_port()}"
    with pytest.raises(ConnectionError, match=bootstrap):
        asyncio.run(run(bootstrap, ["alerts"], "test", nats_server.url, request_timeout_ms=5000))
    assert main(["--bootstrap", bootstrap, "--topic", "alerts", "--nats", nats_server.url]) == 2
    with pytest.raises(SystemExit):  # no topic: a usage error, not a traceback
        main(["--bootstrap", bootstrap, "--nats", nats_server.url])
