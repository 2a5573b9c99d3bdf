"""Sends one page view exactly as the tutorial's Go producer writes it, with kafka-python: an
independent Kafka client, so the consumer's test does not only read records its own Rust
client wrote.

The tutorial's record: a Unix-seconds id, no key, no receive time, the record's timestamp
set by the client (CreateTime).

Usage: produce.py BROKERS TOPIC PARTITION
Prints the record's id, partition, offset and timestamp (ms) as one JSON line.
"""

import json
import sys
import time

from kafka import KafkaProducer


def main() -> None:
    brokers, topic, partition = sys.argv[1], sys.argv[2], int(sys.argv[3])
    record_id = str(int(time.time()))
    value = {
        "id": record_id,
        "eventType": "PAGE_VIEW",
        "userId": "some_session_id",
        "path": "/test",
        "search": "?q=foo",
        "title": "Kafka Demo",
        "url": "kafka.demo.com",
    }
    producer = KafkaProducer(
        bootstrap_servers=brokers.split(","),
        acks="all",
        request_timeout_ms=10_000,
        max_block_ms=20_000,
    )
    sent = producer.send(
        topic,
        value=json.dumps(value, separators=(",", ":")).encode(),
        partition=partition,
    )
    meta = sent.get(timeout=20)
    producer.close(timeout=10)
    print(
        json.dumps(
            {
                "id": record_id,
                "partition": meta.partition,
                "offset": meta.offset,
                "timestamp_ms": meta.timestamp,
            }
        )
    )


if __name__ == "__main__":
    main()
