"""Jepsen's Kafka analysis from the history alone (no oracle): what a cluster did, judged
only by what its clients saw - the semantics of jepsen.tests.kafka (jepsen-io/jepsen,
jepsen/src/jepsen/tests/kafka.clj), so that a history from any cluster, or from Jepsen
itself, gets the same anomaly names as the simulator's.

The history model is Jepsen's: operations {index, time, process, type, f, value}, type
invoke | ok | info | fail, f send | poll | txn | assign | subscribe; a send, poll or txn
carries micro-operations - ("send", key, value) on invocation, ("send", key, [offset,
value]) once the offset is known (or still ("send", key, value) if it never was), and
("poll", {key: [[offset, value], ...]}).

Version orders. Per key, a log by offset of the values known to be there: those read by
any poll (a poll returns what is in the log, whatever became of its transaction) and
those written by sends that committed - an ok operation's, or an info one's whose
writes some ok poll read (it must have committed, or that read was aborted); a failed
operation's sends never happened. An *index* is a rank among the offsets known to hold
something, so that gaps in what was observed do not count as missing records.

Anomalies, with Jepsen's names and witnesses (the rest of Jepsen's set - the internal
forms int-*, G0, G1c - build on the same version orders; not yet here):

    inconsistent-offsets  two values at one offset of one key
    duplicate             one value at two or more offsets
    G1a                   a poll read a value whose send failed (an aborted write)
    lost-write            a committed value never read, below an index some poll read
    unseen                an acknowledged value no poll returned, final read included
    poll-skip             a process's poll began past the next index after its last
                          successful poll of the key (the values skipped named)
    nonmonotonic-poll     ... began at or before it
    nonmonotonic-send     a process's send landed at or before its previous one's

A process's position on a key is what its last *ok* operation left: an aborted or
crashed transaction must rewind, so the next poll is judged from there; an assign or
subscribe that leaves the key out forgets it (Jepsen allows the jump then).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

OK, INFO, FAIL, INVOKE = "ok", "info", "fail", "invoke"


def sends(op: dict) -> Iterable[tuple]:
    """(key, offset or None, value) of each send micro-operation of `op`."""
    for mop in op.get("value") or ():
        if mop[0] == "send":
            _, key, v = mop
            if isinstance(v, (list, tuple)) and len(v) == 2:
                yield key, v[0], v[1]
            else:
                yield key, None, v


def polls(op: dict) -> Iterable[tuple]:
    """(key, offset, value) of each record each poll micro-operation of `op` returned."""
    for mop in op.get("value") or ():
        if mop[0] == "poll" and len(mop) > 1:
            for key, records in (mop[1] or {}).items():
                for offset, v in records:
                    yield key, offset, v


@dataclass
class VersionOrder:
    log: dict[int, set] = field(default_factory=dict)  # offset -> values seen there

    def index_of_offset(self) -> dict[int, int]:
        return {offset: i for i, offset in enumerate(sorted(self.log))}

    def indexes(self) -> dict[object, list[int]]:
        """value -> the indexes it is at, in order."""
        ranks = self.index_of_offset()
        out: dict[object, list[int]] = defaultdict(list)
        for offset in sorted(self.log):
            for v in sorted(self.log[offset], key=repr):  # (sets of str iterate by hash)
                out[v].append(ranks[offset])
        return dict(out)

    def by_value(self) -> dict[object, int]:
        """value -> its last index (a value seen at several offsets is ordered by the last)."""
        return {v: ix[-1] for v, ix in self.indexes().items()}

    def by_index(self) -> dict[int, object]:
        """index -> the value ordered there (one of them, the same every time, if several)."""
        out: dict[int, object] = {}
        for v, i in sorted(self.by_value().items(), key=lambda item: repr(item[0])):
            out.setdefault(i, v)
        return out


@dataclass
class Analysis:
    orders: dict[object, VersionOrder]
    errors: dict[str, list[dict]]


def _committed_writers(history: list[dict]) -> list[dict]:
    """The operations whose sends happened: ok ones, and info ones an ok poll read from."""
    read_ok = {(k, v) for op in history if op["type"] == OK for k, _, v in polls(op)}
    return [op for op in history if op["type"] == OK or
            (op["type"] == INFO and any((k, v) in read_ok for k, _, v in sends(op)))]


def version_orders(history: list[dict]) -> tuple[dict[object, VersionOrder], list[dict]]:
    """Per key its version order, and the inconsistent offsets (two values at one)."""
    orders: dict[object, VersionOrder] = defaultdict(VersionOrder)
    completed = [op for op in history if op["type"] != INVOKE]
    for op in _committed_writers(completed):
        for k, offset, v in sends(op):
            if offset is not None:
                orders[k].log.setdefault(offset, set()).add(v)
    for op in completed:
        for k, offset, v in polls(op):
            orders[k].log.setdefault(offset, set()).add(v)
    errors = []
    for k, order in orders.items():
        ranks = order.index_of_offset()
        for offset in sorted(order.log):
            if len(order.log[offset]) > 1:
                errors.append({"key": k, "offset": offset, "index": ranks[offset], "values": set(order.log[offset])})
    return dict(orders), errors


def analysis(history: list[dict], final_read: bool = False) -> Analysis:
    """Every anomaly this module knows, with its witnesses (empty kinds left out).
    `final_read`: the history ends with Jepsen's final read, so an acknowledged value no
    poll ever returned is `unseen` (without one it may only be unread yet)."""
    orders, inconsistent = version_orders(history)
    completed = [op for op in history if op["type"] != INVOKE]
    read = {(k, v) for op in completed for k, _, v in polls(op)}
    lost = _lost_writes(completed, orders, read)
    errors = {"inconsistent-offsets": inconsistent, "duplicate": _duplicates(orders),
              "G1a": _g1a(completed), "lost-write": lost,
              "unseen": _unseen(completed, lost, read) if final_read else [],
              **_successive(completed, orders)}
    return Analysis(orders, {name: found for name, found in errors.items() if found})


def _successive(completed: list[dict], orders: dict[object, VersionOrder]) -> dict[str, list[dict]]:
    """poll-skip, nonmonotonic-poll and nonmonotonic-send: each operation of a process
    against where its last ok operation left the key."""
    by_value = {k: order.by_value() for k, order in orders.items()}
    by_index = {k: order.by_index() for k, order in orders.items()}
    last: dict[tuple, tuple[int, object, dict]] = {}  # (process, kind, key) -> (index, value, op)
    out: dict[str, list[dict]] = {"poll-skip": [], "nonmonotonic-poll": [], "nonmonotonic-send": []}
    for op in completed:
        if op["f"] in ("assign", "subscribe"):
            keep = set(op.get("value") or ())
            for state in [s for s in last if s[0] == op["process"] and s[2] not in keep]:
                del last[state]
            continue
        for kind, items in (("poll", polls(op)), ("send", sends(op))):
            seen: dict[object, list] = defaultdict(list)  # key -> the values in this op, in order
            for k, _, v in items:
                if v in by_value.get(k, {}):
                    seen[k].append(v)
            for k, values in seen.items():
                first, final = by_value[k][values[0]], by_value[k][values[-1]]
                prev = last.get((op["process"], kind, k))
                if prev is not None:
                    delta = first - prev[0]
                    if kind == "poll" and delta > 1:
                        out["poll-skip"].append({"key": k, "ops": [prev[2], op], "delta": delta, "skipped": [
                            by_index[k][i] for i in range(prev[0] + 1, first) if i in by_index[k]]})
                    elif delta <= 0:
                        out[f"nonmonotonic-{kind}"].append({"key": k, "ops": [prev[2], op],
                                                           "values": [prev[1], values[0]], "delta": delta})
                if op["type"] == OK:
                    last[(op["process"], kind, k)] = (final, values[-1], op)
    return out


def _unseen(completed: list[dict], lost: list[dict], read: set) -> list[dict]:
    """Acknowledged values no poll returned (`read`: those some poll did), beyond those
    already lost writes."""
    known_lost = {(e["key"], e["value"]) for e in lost}
    return [{"key": k, "value": v, "writer": op} for op in completed if op["type"] == OK
            for k, _, v in sends(op) if (k, v) not in read and (k, v) not in known_lost]


def _duplicates(orders: dict[object, VersionOrder]) -> list[dict]:
    out = []
    for k, order in orders.items():
        at: dict[object, list[int]] = defaultdict(list)
        for offset in sorted(order.log):
            for v in sorted(order.log[offset], key=repr):
                at[v].append(offset)
        out += [{"key": k, "value": v, "count": len(offsets), "offsets": offsets}
                for v, offsets in at.items() if len(offsets) > 1]
    return out


def _g1a(completed: list[dict]) -> list[dict]:
    """A poll read a value a failed operation sent (and no other operation sent it)."""
    failed = {(k, v): op for op in completed if op["type"] == FAIL for k, _, v in sends(op)}
    others = {(k, v) for op in completed if op["type"] != FAIL for k, _, v in sends(op)}
    out = []
    for op in completed:
        if op["type"] != OK:
            continue
        for k, _, v in polls(op):
            if (k, v) in failed and (k, v) not in others:
                out.append({"reader": op, "writer": failed[(k, v)], "key": k, "value": v})
    return out


def _lost_writes(completed: list[dict], orders: dict[object, VersionOrder], read: set) -> list[dict]:
    """A committed write never read by any poll (`read`: those some poll did), below the
    highest index an ok poll read on its key (a read there means the log already held it)."""
    ranks = {k: order.index_of_offset() for k, order in orders.items()}
    indexes = {k: order.indexes() for k, order in orders.items()}
    highest: dict[object, tuple[int, dict]] = {}  # key -> (index, the poll that read it)
    for op in completed:
        if op["type"] != OK:
            continue
        for k, offset, _ in polls(op):
            i = ranks[k][offset]
            if k not in highest or i > highest[k][0]:
                highest[k] = (i, op)
    out = []
    for op in _committed_writers(completed):
        for k, _, v in sends(op):
            if (k, v) in read or k not in highest:
                continue
            ix = indexes[k].get(v)
            if ix and ix[0] < highest[k][0]:
                out.append({"key": k, "value": v, "index": ix[0], "max-read-index": highest[k][0],
                            "writer": op, "max-read": highest[k][1]})
    return out


def from_history(history) -> list[dict]:
    """A simulator history (properties/history.py) as Jepsen's operations: each send and
    poll one operation, a key per topic-partition ("events-0"). A producer pipelines its
    sends - several in flight, answered in any order - where a Jepsen process does one
    operation at a time, so a send's completion takes its invocation's place: a process's
    sends are judged in the order it made them. (Transactions, assign and subscribe are not
    carried over yet.)"""
    placed = []  # (position, op)
    invoked: dict[tuple, int] = {}  # (process, value) -> position of the send's invocation
    for op in history.ops:
        if op.f == "send":
            known = op.partition is not None and op.offset is not None and op.offset >= 0
            key = f"{op.topic}-{op.partition}" if op.partition is not None else op.topic
            mop = ["send", key, [op.offset, op.value] if known and op.type != INVOKE else op.value]
            if op.type == INVOKE:
                invoked[(op.process, op.value)] = op.index
                at = float(op.index)
            else:
                at = invoked.pop((op.process, op.value), op.index) + 0.5
            placed.append((at, {"time": op.time, "process": op.process, "type": op.type, "f": "send",
                                "value": [mop]}))
        elif op.f == "poll":
            read: dict[str, list] = defaultdict(list)
            for topic, partition, offset, _, value in op.records:
                read[f"{topic}-{partition}"].append([offset, value])
            placed.append((float(op.index), {"time": op.time, "process": op.process, "type": op.type, "f": "poll",
                                             "value": [["poll", dict(read)] if op.type != INVOKE else ["poll"]]}))
    placed.sort(key=lambda item: item[0])
    return [{"index": i, **op} for i, (_, op) in enumerate(placed)]
