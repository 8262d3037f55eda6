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
    # First pass: the first offset of every value, and more only for the rare value that
    # stands at a second one (a set per value would dominate the cost on big histories).
    first: dict[tuple[str, int, str | None], int] = {}
    extra: dict[tuple[str, int, str | None], set[int]] = {}

    def seen(key: tuple[str, int, str | None], offset: int) -> None:
        f = first.setdefault(key, offset)
        if f != offset:
            extra.setdefault(key, {f}).add(offset)

    for (topic, partition), records in committed.items():
        for offset, _, value in records:
            seen((topic, partition, value), offset)
    polls = [op for op in history.ops if op.f == "poll" and op.type == OK]
    for op in polls:
        for topic, partition, offset, _, value in op.records:
            seen((topic, partition, value), offset)
    if not extra:
        return []
    # Second pass, for the duplicates only: the ops that witness them.
    witness: dict[tuple[str, int, str | None], list[Op]] = {key: [] for key in extra}
    for op in history.ops:
        if op.f == "send" and op.type == OK and (op.topic, op.partition, op.value) in witness:
            witness[(op.topic, op.partition, op.value)].insert(0, op)
    for op in polls:
        for topic, partition, _, _, value in op.records:
            ops = witness.get((topic, partition, value))
            if ops is not None and len(ops) < 4:
                ops.append(op)
    return [Violation("duplicate", tuple(witness[key]), f"{key[2]!r} stands at offsets {sorted(extra[key])}"
                                                        f" of {key[0]}-{key[1]}")
            for key in sorted(extra, key=str)]
