"""Consumer group checkers: exclusivity, committed offsets, and what the group processed.

The history carries, per consumer: `owns` (its whole assignment when a generation
begins; value "generation member-id"), `commit` invoke / ok / fail (the offsets, each
the next offset to read), and `process` (records the application processed).

shared-partition: two members own one partition in the same generation. (A member
    dropped from the group may go on believing it owns its partitions; that is a
    zombie, fenced by the generation on its commits, not two owners of a generation.)
offset-regression: within one generation, a partition's successfully committed offset
    went down.
lost-commit: the group's committed offset read back at the end is below the last one
    the coordinator acknowledged for that partition.
unseen: a record of a consumed partition's final log that no member ever processed
    (Jepsen's name; for a group that kept running: the record is lost to the application).
redelivered: a record processed more than once by the group's members.

Which of these a configuration allows depends on its commit strategy (the seed notes):
commit after processing is at-least-once (redelivered, never unseen), commit before
processing is at-most-once (unseen, never redelivered), auto commit redelivers after a
crash and loses records when processing runs after poll returns.
"""

from __future__ import annotations

from collections.abc import Mapping

from kafkaproof.properties.durability import Committed
from kafkaproof.properties.history import OK, History, Op
from kafkaproof.properties.violation import Violation

TP = tuple[str, int]


def _generation(op: Op) -> int:
    return int((op.value or "-1").split()[0])


def check_group_exclusivity(history: History) -> list[Violation]:
    owner: dict[tuple[int, TP], Op] = {}
    out = []
    for op in history.ops:
        if op.f != "owns":
            continue
        gen = _generation(op)
        for topic, partition, *_ in op.records:
            prev = owner.setdefault((gen, (topic, partition)), op)
            if prev.process != op.process:
                out.append(Violation("shared-partition", (prev, op),
                                     f"{topic}-{partition} owned by {prev.process} and {op.process}"
                                     f" in generation {gen}"))
    return out


def check_commits(history: History, final_offsets: Mapping[TP, int] | None = None) -> list[Violation]:
    out = []
    last_in_gen: dict[tuple[int, TP], tuple[int, Op]] = {}
    last_acked: dict[TP, tuple[int, Op]] = {}
    for op in history.ops:
        if op.f != "commit" or op.type != OK:
            continue
        gen = int((op.value or "? -1").split()[-1])
        for topic, partition, offset, *_ in op.records:
            tp = (topic, partition)
            prev = last_in_gen.get((gen, tp))
            if prev is not None and offset < prev[0]:
                out.append(Violation("offset-regression", (prev[1], op),
                                     f"{topic}-{partition} committed {offset} after {prev[0]} in generation {gen}"))
            last_in_gen[(gen, tp)] = (offset, op)
            last_acked[tp] = (offset, op)
    if final_offsets is None:
        return out
    for tp, (offset, op) in sorted(last_acked.items()):
        final = final_offsets.get(tp)
        if final is None or final < offset:
            out.append(Violation("lost-commit", (op,), f"{tp[0]}-{tp[1]}: the coordinator acknowledged {offset},"
                                                       f" the group's committed offset is now {final}"))
    return out


def check_consumption(history: History, committed: Committed) -> list[Violation]:
    processed: dict[tuple[str, int, int], Op] = {}
    out = []
    consumed_topics = set()
    for op in history.ops:
        if op.f == "owns":
            consumed_topics.update(t for t, *_ in op.records)
        if op.f != "process":
            continue
        for topic, partition, offset, *_ in op.records:
            key = (topic, partition, offset)
            first = processed.setdefault(key, op)
            if first is not op:
                out.append(Violation("redelivered", (first, op), f"{topic}-{partition}@{offset} processed by"
                                                                  f" {first.process} and again by {op.process}"))
    for (topic, partition), records in sorted(committed.items()):
        if topic not in consumed_topics:
            continue
        for offset, _, value in records:
            if (topic, partition, offset) not in processed:
                out.append(Violation("unseen", (), f"{topic}-{partition}@{offset} ({value!r}) was never processed"))
    return out
