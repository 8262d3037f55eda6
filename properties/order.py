"""Per-partition order of one producer: Jepsen's `nonmonotonic-send`.

nonmonotonic-send: a producer's acknowledged sends to one partition were given
    offsets in a different order from the one it sent them in. Kafka keeps a
    producer's order within a partition with idempotence (or one request in flight);
    retries with several in flight and no idempotence can reorder.
"""

from __future__ import annotations

from kafkaproof.properties.history import INVOKE, OK, History, Op
from kafkaproof.properties.violation import Violation


def check_send_order(history: History) -> list[Violation]:
    invoked_at: dict[tuple[str, str | None], int] = {}  # (process, value) -> invoke index
    acked: dict[tuple[str, str | None, int | None], list[tuple[int, int, Op]]] = {}
    for op in history.ops:
        if op.f != "send":
            continue
        if op.type == INVOKE:
            invoked_at[(op.process, op.value)] = op.index
        elif op.type == OK and op.offset is not None:
            acked.setdefault((op.process, op.topic, op.partition), []).append(
                (invoked_at.get((op.process, op.value), op.index), op.offset, op))
    out = []
    for (process, topic, partition), sends in sorted(acked.items(), key=lambda kv: str(kv[0])):
        sends.sort(key=lambda s: s[0])
        for (_, off_a, a), (_, off_b, b) in zip(sends, sends[1:], strict=False):
            if off_b < off_a:
                out.append(Violation("nonmonotonic-send", (a, b),
                                     f"{process} sent {a.value!r} before {b.value!r} to {topic}-{partition},"
                                     f" but they landed at @{off_a} and @{off_b}"))
    return out
