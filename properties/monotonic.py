"""Monotonic reads, per consumer and partition: Jepsen's `nonmonotonic-poll` and `poll-skip`.

nonmonotonic-poll: a consumer received an offset at or below one it had already
    received from the same partition, with no seek in between.
poll-skip: between two offsets a consumer received in succession from a partition,
    the final log holds an offset it never received (and it did not seek).

A group member whose partition is revoked, lost or assigned anew starts again from the
group's committed offset - a seek Kafka does for it - so neither anomaly spans a
rebalance (Jepsen allows both outright for subscribed consumers).
"""

from __future__ import annotations

import bisect

from kafkaproof.properties.durability import Committed
from kafkaproof.properties.history import OK, History, Op
from kafkaproof.properties.violation import Violation

REPOSITIONED = ("assigned", "revoked", "lost")  # group events after which a position restarts


def check_monotonic_reads(history: History, committed: Committed) -> list[Violation]:
    final = {tp: [offset for offset, _, _ in records] for tp, records in committed.items()}
    last: dict[tuple[str, str, int], tuple[int, Op]] = {}  # (process, topic, partition) -> last offset seen
    out = []
    for op in history.ops:
        if op.f == "seek":
            last.pop((op.process, op.topic, op.partition), None)
            continue
        if op.f in REPOSITIONED:
            for topic, partition, *_ in op.records:
                last.pop((op.process, topic, partition), None)
            continue
        if op.f != "poll" or op.type != OK:
            continue
        for topic, partition, offset, _, _ in op.records:
            key = (op.process, topic, partition)
            prev = last.get(key)
            last[key] = (offset, op)
            if prev is None:
                continue
            prev_offset, prev_op = prev
            if offset <= prev_offset:
                out.append(Violation("nonmonotonic-poll", (prev_op, op),
                                     f"{op.process} read {topic}-{partition}@{offset} after @{prev_offset}"))
            elif offset > prev_offset + 1:
                offsets = final.get((topic, partition), [])
                i = bisect.bisect_right(offsets, prev_offset)
                if i < len(offsets) and offsets[i] < offset:
                    out.append(Violation("poll-skip", (prev_op, op),
                                         f"{op.process} jumped from {topic}-{partition}@{prev_offset} to"
                                         f" @{offset}, skipping @{offsets[i]}"))
    return out
