"""Transactions: all or nothing, and nothing aborted is ever read (Jepsen's Kafka names).

A transaction is one f="txn" op: ok = committed, fail = aborted, info = unknown; its
`records` are the values it sent (values are unique per send). The final log is what a
read_committed consumer reads after healing.

G1a (aborted read): a value of an aborted transaction is read by a read_committed
    poll or stands in the final log.
torn-transaction: a transaction some but not all of whose written values are visible
    in the final log (any outcome: atomicity holds or not, whatever the client heard).
lost-transaction: a committed transaction none of whose values is visible.
G1c (cyclic information flow) among committed transactions: an edge T1 -> T2 when T2
    read what T1 wrote (the consume-transform-produce application records its input
    as f="txn-read"); a cycle means each saw the other's uncommitted effects.
"""

from __future__ import annotations

from collections.abc import Iterable

import networkx as nx
from kafkaproof.properties.durability import Committed
from kafkaproof.properties.history import FAIL, INFO, INVOKE, OK, History, Op
from kafkaproof.properties.violation import Violation


def transactions(history: History) -> list[Op]:
    return [op for op in history.ops if op.f == "txn" and op.type != INVOKE]


def check_transactions(history: History, committed: Committed) -> list[Violation]:
    txns = transactions(history)
    if not txns:
        return []
    # A write is identified by where it was acknowledged (a value may stand again elsewhere:
    # an exactly-once application's output of a retried input), or by topic and value if
    # its acknowledgement never came.
    at: dict[tuple[str, int, int], str | None] = {}
    anywhere: set[tuple[str, str | None]] = set()
    for (topic, partition), records in committed.items():
        for offset, _, value in records:
            at[(topic, partition, offset)] = value
            anywhere.add((topic, value))

    def visible(r: tuple) -> bool:
        topic, partition, offset, _, value = r
        return at.get((topic, partition, offset), ()) == value if offset >= 0 else (topic, value) in anywhere

    # An unacknowledged write is judged by its value only where no other transaction wrote
    # that value too (an exactly-once application's retry writes the same output again).
    writers: dict[tuple[str, str | None], int] = {}
    for txn in txns:
        for r in txn.records:
            writers[(r[0], r[4])] = writers.get((r[0], r[4]), 0) + 1

    def judged(txn: Op) -> list[tuple]:
        return [r for r in txn.records if r[2] >= 0 or writers[(r[0], r[4])] == 1]

    out: list[Violation] = []
    aborted_at: dict[tuple[str, int, int], tuple[str | None, Op]] = {}
    aborted_unacked: dict[tuple[str, str | None], Op] = {}
    for txn in txns:
        records = judged(txn)
        if not records:
            continue
        seen = [r[4] for r in records if visible(r)]
        if txn.type == FAIL:
            for r in records:
                if r[2] >= 0:
                    aborted_at[(r[0], r[1], r[2])] = (r[4], txn)
                else:
                    aborted_unacked[(r[0], r[4])] = txn
        if txn.type == FAIL and seen:
            out.append(Violation("G1a", (txn,), f"aborted transaction {txn.process}#{txn.value}: {seen[:3]}"
                                                f" visible in the final log"))
        elif 0 < len(seen) < len(records):
            missing = [r[4] for r in records if not visible(r)]
            out.append(Violation("torn-transaction", (txn,),
                                 f"{txn.type} transaction {txn.process}#{txn.value}: {len(seen)} of"
                                 f" {len(records)} writes visible, missing {missing[:3]}"))
        elif txn.type == OK and not seen:
            out.append(Violation("lost-transaction", (txn,), f"committed transaction {txn.process}#{txn.value}:"
                                                             f" none of {[r[4] for r in records[:3]]} is in"
                                                             " the final log"))
    for op in history.ops:
        if op.f == "poll" and op.type == OK:
            for topic, partition, offset, _, value in op.records:
                value_and_txn = aborted_at.get((topic, partition, offset))
                txn = value_and_txn[1] if value_and_txn and value_and_txn[0] == value \
                    else aborted_unacked.get((topic, value))
                if txn is not None:
                    out.append(Violation("G1a", (txn, op), f"{op.process} read {value!r} at {topic}-{partition}"
                                                           f"@{offset}, written by aborted transaction"
                                                           f" {txn.process}#{txn.value}"))
                    break
    return out + check_g1c(txns, reads(history))


def reads(history: History) -> dict[tuple[str, str], set[str | None]]:
    """(process, txn number) -> values that transaction consumed (recorded by the
    consume-transform-produce application as f="txn-read")."""
    out: dict[tuple[str, str], set[str | None]] = {}
    for op in history.ops:
        if op.f == "txn-read" and op.type == OK:
            out.setdefault((op.process, op.value), set()).update(r[4] for r in op.records)
    return out


def check_g1c(txns: Iterable[Op], read: dict[tuple[str, str], set]) -> list[Violation]:
    """wr edges only: Kafka interleaves concurrent transactions' writes in a partition
    (offset order is not commit order), so a ww "cycle" is no anomaly under its isolation."""
    committed = [t for t in txns if t.type in (OK, INFO)]
    by_index = {t.index: t for t in committed}
    writer = {r[4]: t for t in committed for r in t.records}
    g = nx.DiGraph()
    for t in committed:
        for v in read.get((t.process, t.value), ()):
            w = writer.get(v)
            if w is not None and w.index != t.index:
                g.add_edge(w.index, t.index)
    try:
        cycle = nx.find_cycle(g)
    except nx.NetworkXNoCycle:
        return []
    path = " -wr-> ".join(f"{by_index[a].process}#{by_index[a].value}" for a, _ in cycle)
    return [Violation("G1c", tuple(by_index[a] for a, _ in cycle), f"information flows in a cycle: {path} -wr-> "
                                                                   f"{by_index[cycle[0][0]].process}#"
                                                                   f"{by_index[cycle[0][0]].value}")]


def check_processing(history: History, committed: Committed,
                     final_offsets: dict[tuple[str, int], int] | None) -> list[Violation]:
    """Exactly-once consume-transform-produce: the applications that read inside
    transactions (f="txn-read") copy each input value to an output topic. Every input
    record below the group's final committed offset must have exactly one output.

    eos-duplicate: an input value stands more than once among the committed outputs.
    eos-missing: an input record the group committed past has no output."""
    input_topics: set[str] = set()
    processes: set[str] = set()
    for op in history.ops:
        if op.f == "txn-read" and op.type == OK:
            processes.add(op.process)
            input_topics |= {r[0] for r in op.records}
    if not processes:
        return []
    writers: dict[str | None, list[Op]] = {}
    for t in transactions(history):
        if t.process in processes:
            for r in t.records:
                writers.setdefault(r[4], []).append(t)
    output_topics = {r[0] for ts in writers.values() for t in ts for r in t.records}
    readers: dict[str | None, list[Op]] = {}
    for op in history.ops:
        if op.f == "txn-read" and op.type == OK:
            for r in op.records:
                readers.setdefault(r[4], []).append(op)
    outputs: dict[str | None, int] = {}
    for (topic, _), records in committed.items():
        if topic in output_topics:
            for _, _, value in records:
                outputs[value] = outputs.get(value, 0) + 1
    out = []
    for (topic, partition), records in sorted(committed.items()):
        if topic not in input_topics:
            continue
        done = (final_offsets or {}).get((topic, partition), -1)
        for offset, _, value in records:
            n = outputs.get(value, 0)
            if n > 1:
                out.append(Violation("eos-duplicate", tuple(writers.get(value, ())[:4]), f"input {value!r} ({topic}-{partition}@{offset}) has"
                                                          f" {n} committed outputs"))
            elif n == 0 and offset < done:
                out.append(Violation("eos-missing", tuple(readers.get(value, ())[:4]), f"input {value!r} ({topic}-{partition}@{offset}) is below"
                                                        f" the committed offset {done} but has no output"))
    return out


__all__ = ["check_processing", "check_transactions", "check_g1c", "transactions"]
