"""Exactly-once delivery into the log: Jepsen's `duplicate`.

duplicate: one sent value stands at two or more offsets of a partition, in the final
    log or in what consumers polled. Sent values are unique per send, so a second copy
    can only come from a retry written twice (no idempotence, or a broken dedupe).
"""

from __future__ import annotations

from kafkaproof.properties.durability import Committed
from kafkaproof.properties.history import OK, History, Op
from kafkaproof.properties.violation import Violation


def check_duplicates(history: History, committed: Committed) -> list[Violation]:
    offsets: dict[tuple[str, int, str | None], set[int]] = {}
    witness: dict[tuple[str, int, str | None], list[Op]] = {}
    for (topic, partition), records in committed.items():
        for offset, _, value in records:
            offsets.setdefault((topic, partition, value), set()).add(offset)
    for op in history.ops:
        if op.f == "poll" and op.type == OK:
            for topic, partition, offset, _, value in op.records:
                key = (topic, partition, value)
                offsets.setdefault(key, set()).add(offset)
                witness.setdefault(key, []).append(op)
    sends = {(op.topic, op.partition, op.value): op for op in history.ops
             if op.f == "send" and op.type == OK and op.partition is not None}
    out = []
    for key in sorted(k for k, v in offsets.items() if len(v) > 1):
        topic, partition, value = key
        ops = tuple(([sends[key]] if key in sends else []) + witness.get(key, [])[:3])
        out.append(Violation("duplicate", ops, f"{value!r} stands at offsets {sorted(offsets[key])}"
                                               f" of {topic}-{partition}"))
    return out
