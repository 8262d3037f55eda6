"""Committed-message durability: Jepsen's `lost-write` and `inconsistent-offsets`.

Reads the history and the final state read back after healing (`committed`:
partition -> [(offset, key, value)] below the high watermark).

lost-write: an acknowledged send whose value is nowhere in the final log of its
    partition. With acks=0 the acknowledgement carries no offset (the producer only
    knows the request left); such a send that vanished counts too. Kafka promises acknowledged writes survive only under its
    configuration's assumptions (acks=all, enough ISR members, no unclean election,
    fewer simultaneous failures than replicas); the checker reports, the model judges.
inconsistent-offsets: an acknowledged offset that holds a different value in the
    final log (the write's slot was reused by another record).
"""

from __future__ import annotations

from collections.abc import Mapping

from kafkaproof.properties.history import OK, History
from kafkaproof.properties.violation import Violation

# (topic, partition) -> [(offset, key, value)] read back from the healed cluster
Committed = Mapping[tuple[str, int], list[tuple[int, str | None, str | None]]]


def check_durability(history: History, committed: Committed) -> list[Violation]:
    values: dict[tuple[str, int], set[str | None]] = {}
    at: dict[tuple[str, int, int], str | None] = {}
    for (topic, partition), records in committed.items():
        values[(topic, partition)] = {v for _, _, v in records}
        for offset, _, value in records:
            at[(topic, partition, offset)] = value
    out = []
    for op in history.ops:
        if op.f != "send" or op.type != OK or op.partition is None:
            continue
        tp = (op.topic, op.partition)
        if op.value not in values.get(tp, set()):
            where = f"@{op.offset}" if op.offset is not None else " (acks=0: no offset)"
            out.append(Violation("lost-write", (op,), f"{op.value!r} acked at {op.topic}-{op.partition}{where},"
                                                      " absent from the final log"))
        elif (op.topic, op.partition, op.offset) in at and at[(op.topic, op.partition, op.offset)] != op.value:
            out.append(Violation("inconsistent-offsets", (op,),
                                 f"offset {op.offset} acked for {op.value!r} holds"
                                 f" {at[(op.topic, op.partition, op.offset)]!r}"))
    return out
