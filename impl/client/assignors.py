"""Partition assignors: which member of a consumer group reads which partition.

As in Kafka, assignment runs in the client: the coordinator picks a group leader and
hands it every member's subscription; the leader's assignor decides and sends the
result back through SyncGroup. Each assignor is a pure function of the members'
subscriptions (topics, and the partitions each owned last generation) and the
partition count of every topic; it returns member -> partitions, every member present.

    range              per topic, consecutive partitions, the first members one more
    roundrobin         all partitions in order, dealt to the members in turn
    sticky             balanced, keeping as many previous owners as balance allows
    cooperative-sticky sticky, but a partition that changes owner is first only
                       revoked (unassigned in this generation) and given to its new owner
                       in a follow-up rebalance (KIP-429), so nobody else stops consuming
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from kafkaproof.impl.protocol.messages import TopicPartition

ASSIGNORS = ("range", "roundrobin", "sticky", "cooperative-sticky")
# Kafka's default partition.assignment.strategy is [range, cooperative-sticky]; the group
# uses the first one every member supports, range.
DEFAULT_STRATEGY = ("range", "cooperative-sticky")


class Subscription(NamedTuple):
    topics: tuple[str, ...]
    owned: tuple[TopicPartition, ...] = ()


Assignment = dict[str, list[TopicPartition]]


def assign(strategy: str, members: Mapping[str, Subscription], partitions: Mapping[str, int]) -> Assignment:
    if strategy not in ASSIGNORS:
        raise ValueError(f"unknown partition.assignment.strategy {strategy!r}: one of {', '.join(ASSIGNORS)}")
    return {"range": range_assign, "roundrobin": round_robin_assign, "sticky": sticky_assign,
            "cooperative-sticky": cooperative_sticky_assign}[strategy](members, partitions)


def _all_partitions(members: Mapping[str, Subscription], partitions: Mapping[str, int]) -> list[TopicPartition]:
    topics = sorted({t for s in members.values() for t in s.topics if partitions.get(t, 0) > 0})
    return [TopicPartition(t, p) for t in topics for p in range(partitions[t])]


def range_assign(members: Mapping[str, Subscription], partitions: Mapping[str, int]) -> Assignment:
    out: Assignment = {m: [] for m in members}
    for topic in sorted({t for s in members.values() for t in s.topics}):
        subscribed = sorted(m for m, s in members.items() if topic in s.topics)
        n = partitions.get(topic, 0)
        per, extra = divmod(n, len(subscribed))
        start = 0
        for i, member in enumerate(subscribed):
            count = per + (1 if i < extra else 0)
            out[member] += [TopicPartition(topic, p) for p in range(start, start + count)]
            start += count
    return out


def round_robin_assign(members: Mapping[str, Subscription], partitions: Mapping[str, int]) -> Assignment:
    out: Assignment = {m: [] for m in members}
    order = sorted(members)
    i = 0
    for tp in _all_partitions(members, partitions):
        for _ in range(len(order)):
            member = order[i % len(order)]
            i += 1
            if tp.topic in members[member].topics:
                out[member].append(tp)
                break
    return out


def sticky_assign(members: Mapping[str, Subscription], partitions: Mapping[str, int]) -> Assignment:
    """Balanced and sticky: every member keeps what it owned, the unowned partitions go
    to the least loaded subscribers, then single partitions move from the most to the
    least loaded member able to take them until no two differ by more than one (Kafka's
    StickyAssignor does the same in spirit: balance first, then as few moves as possible)."""
    out: Assignment = {m: [] for m in members}
    if not members:
        return out
    every = _all_partitions(members, partitions)
    valid = set(every)
    taken: set[TopicPartition] = set()
    for member in sorted(members):
        sub = members[member]
        keep = [tp for tp in sorted(sub.owned) if tp in valid and tp.topic in sub.topics and tp not in taken]
        out[member] = keep
        taken.update(keep)
    for tp in every:
        eligible = [m for m in members if tp.topic in members[m].topics]
        if tp not in taken and eligible:
            out[min(eligible, key=lambda m: (len(out[m]), m))].append(tp)
    while True:  # each move lowers the sum of squared loads, so this ends
        move = None
        for donor in sorted(members, key=lambda m: (-len(out[m]), m)):
            for tp in sorted(out[donor], reverse=True):
                takers = [m for m in members if tp.topic in members[m].topics and len(out[m]) < len(out[donor]) - 1]
                if takers:
                    move = donor, tp, min(takers, key=lambda m: (len(out[m]), m))
                    break
            if move:
                break
        if move is None:
            break
        donor, tp, taker = move
        out[donor].remove(tp)
        out[taker].append(tp)
    return {m: sorted(tps) for m, tps in out.items()}


def cooperative_sticky_assign(members: Mapping[str, Subscription], partitions: Mapping[str, int]) -> Assignment:
    """The sticky target, minus every partition another member still owns: its owner
    revokes it, rejoins, and the follow-up rebalance hands it over (KIP-429)."""
    target = sticky_assign(members, partitions)
    owner = {tp: m for m, s in members.items() for tp in s.owned}
    return {m: [tp for tp in tps if owner.get(tp, m) == m] for m, tps in target.items()}
