"""Read-your-writes: a process that reads a partition after its write there was
acknowledged must see that write (the seed notes' reason followers serve no reads).

read-your-writes: process P's send of v was acknowledged at offset o of a partition;
    a poll by P invoked after that reached offset o or beyond in the partition, yet P
    never received v at o.
"""

from __future__ import annotations

import bisect

from kafkaproof.properties.history import INVOKE, OK, History, Op
from kafkaproof.properties.violation import Violation


def check_read_your_writes(history: History) -> list[Violation]:
    # Per (process, topic, partition): polls in time order with the highest offset each
    # returned, and every (offset -> value) the process received.
    polls: dict[tuple, list[tuple[int, int, Op]]] = {}
    seen: dict[tuple, dict[int, str | None]] = {}
    invoked: dict[str, int] = {}
    for op in history.ops:
        if op.f != "poll":
            continue
        if op.type == INVOKE:
            invoked[op.process] = op.time
        elif op.type == OK:
            start = invoked.get(op.process, op.time)
            top: dict[tuple, int] = {}
            for topic, partition, offset, _, value in op.records:
                key = (op.process, topic, partition)
                seen.setdefault(key, {})[offset] = value
                top[key] = max(top.get(key, -1), offset)
            for key, highest in top.items():
                polls.setdefault(key, []).append((start, highest, op))
    # suffix maxima: the highest offset any poll invoked at or after a time reached
    suffix: dict[tuple, tuple[list[int], list[tuple[int, Op]]]] = {}
    for key, items in polls.items():
        times = [t for t, _, _ in items]
        best: list[tuple[int, Op]] = [None] * len(items)  # type: ignore[list-item]
        running: tuple[int, Op] | None = None
        for i in range(len(items) - 1, -1, -1):
            if running is None or items[i][1] > running[0]:
                running = (items[i][1], items[i][2])
            best[i] = running
        suffix[key] = (times, best)
    out = []
    for op in history.ops:
        if op.f != "send" or op.type != OK or op.offset is None:
            continue
        key = (op.process, op.topic, op.partition)
        if key not in suffix:
            continue
        times, best = suffix[key]
        i = bisect.bisect_left(times, op.time)
        if i == len(times) or best[i][0] < op.offset:
            continue  # the process never read that far afterwards
        if seen[key].get(op.offset, object()) != op.value:
            out.append(Violation("read-your-writes", (op, best[i][1]),
                                 f"{op.process} wrote {op.value!r} at {op.topic}-{op.partition}@{op.offset},"
                                 f" then read past it without seeing it"))
    return out
