"""Delivery without the application's help: `failed-send`.

failed-send: a send the producer gave up on (its callback got an error) whose record is
    nowhere in the final log of its topic. Kafka's producer retries transient errors
    (NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, a lost connection) itself until
    delivery.timeout.ms; with retries=0 every such blip reaches the application, and an
    application that only logs the error - or never looks, fire-and-forget - has lost
    the record. A failed send whose record did land (the error was ambiguous) is no loss.
"""

from __future__ import annotations

from kafkaproof.properties.durability import Committed
from kafkaproof.properties.history import FAIL, History
from kafkaproof.properties.violation import Violation


def check_delivery(history: History, committed: Committed) -> list[Violation]:
    landed: dict[str, set[str | None]] = {}
    for (topic, _), records in committed.items():
        landed.setdefault(topic, set()).update(v for _, _, v in records)
    return [Violation("failed-send", (op,), f"{op.value!r} to {op.topic} failed with {op.error} and is not in"
                                            " the final log: the producer did not retry it, the application must")
            for op in history.ops
            if op.f == "send" and op.type == FAIL and op.value not in landed.get(op.topic, set())]
