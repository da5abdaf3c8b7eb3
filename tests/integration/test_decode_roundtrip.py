"""Through the real broker: valid records come back equal, malformed ones become dead letters."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streams.deadletter import from_kafka, to_kafka
from streams.decoding import GpuDecoder, InferenceDecoder
from streams.intake import Intake
from streams.settings import Settings
from tests.cases import MAX_BYTES, encoded_valid, malformed_cases

pytestmark = pytest.mark.integration


async def _consume(bootstrap: str, topic: str, group: str, count: int, timeout: float = 30.0) -> list:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest")
    await consumer.start()
    messages: list = []
    try:
        async with asyncio.timeout(timeout):
            while len(messages) < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    messages.extend(records)
    finally:
        await consumer.stop()
    return sorted(messages, key=lambda m: m.offset)


async def test_records_and_malformed_messages_through_kafka(kafka_bootstrap: str, unique_topic: str, unique_group: str) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, max_message_bytes=MAX_BYTES)
    topics = {"inference": f"{unique_topic}-inference", "gpu": f"{unique_topic}-gpu"}
    deadletter_topic = f"{unique_topic}-deadletter"
    valid = encoded_valid()
    malformed = malformed_cases()

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=MAX_BYTES * 4)
    await producer.start()
    try:
        sent: dict[str, list] = {"inference": [], "gpu": []}
        for topic, raw, record in valid:  # a header without a value (Kafka allows one) is as if absent
            await producer.send_and_wait(topics[topic], raw, key=b"k", headers=[("content-type", None)])
            sent[topic].append(("valid", record))
        for case in malformed:
            await producer.send_and_wait(topics[case.topic], case.value, key=case.name.encode(), headers=case.headers)
            sent[case.topic].append(("malformed", case))
    finally:
        await producer.stop()

    intakes = {"inference": Intake(InferenceDecoder(settings)), "gpu": Intake(GpuDecoder(settings))}
    letters = []
    for kind, topic in topics.items():
        messages = await _consume(kafka_bootstrap, topic, unique_group, len(sent[kind]))
        assert len(messages) == len(sent[kind])
        for msg, (what, expected) in zip(messages, sent[kind], strict=True):
            result = intakes[kind].process(
                topic=msg.topic, partition=msg.partition, offset=msg.offset, key=msg.key,
                value=msg.value, headers=list(msg.headers), timestamp=msg.timestamp / 1000,
            )
            if what == "valid":
                assert result.dead is None and result.records == [expected]
            else:
                assert result.records == [] and result.dead is not None, expected.name
                assert result.dead.reason == expected.reason, (expected.name, result.dead.detail)
                assert (result.dead.value, result.dead.offset, result.dead.topic) == (expected.value, msg.offset, topic)
                letters.append(result.dead)

    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, max_request_size=MAX_BYTES * 4)
    await producer.start()
    try:
        for letter in letters:
            key, value, headers = to_kafka(letter)
            await producer.send_and_wait(deadletter_topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
    back = await _consume(kafka_bootstrap, deadletter_topic, unique_group, len(letters))
    assert [from_kafka(m.key, m.value, list(m.headers)) for m in back] == letters
    assert sum(intakes[k].rejected.total() for k in intakes) == len(malformed) >= 20
