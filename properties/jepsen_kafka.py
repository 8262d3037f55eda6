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

Anomalies, with Jepsen's names and witnesses:

    inconsistent-offsets  two values at one offset of one key
    duplicate             one value at two or more offsets
    G1a                   a poll read a value whose send failed (an aborted write)
    precommitted-read     a transaction polled a value it sent itself (Kafka hides a
                          transaction's sends from every poller until it commits)
    lost-write            a committed value never read, below an index some poll read;
                          or acknowledged at an offset the final read found the log no
                          longer reaches ("log-end", recorded by kafkaproof's final reads)
    unseen                an acknowledged value no poll returned, final read included
    poll-skip             a process's poll began past the next index after its last
                          successful poll of the key (the values skipped named)
    nonmonotonic-poll     ... began at or before it
    nonmonotonic-send     a process's send landed at or before its previous one's
    int-poll-skip         within one operation, two successive values polled from a
                          key skip an index (int-nonmonotonic-poll: go back or repeat)
    int-send-skip         ... two successive sends to a key (int-nonmonotonic-send)
    G0                    a cycle of write-write dependencies (T1 sent a value that
                          directly precedes one T2 sent); only with `ww_deps`
    G1c                   a cycle of write-write and write-read dependencies (T2 polled
                          a value T1 sent) with at least one write-read
                          (G0 and G1c: properties/jepsen_cycles.py)

A process's position on a key is what its last *ok* operation left: an aborted or
crashed transaction must rewind, so the next poll is judged from there; an assign or
subscribe that leaves the key out forgets it (Jepsen allows the jump then).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from kafkaproof.properties import without_cyclic_gc

OK, INFO, FAIL, INVOKE = "ok", "info", "fail", "invoke"
NEMESIS = "nemesis"
NS = 1_000_000  # Jepsen's times are nanoseconds; the simulator's milliseconds


MICRO = frozenset({"send", "poll", "txn"})  # the operations whose value is micro-operations


def sends(op: dict) -> Iterable[tuple]:
    """(key, offset or None, value) of each send micro-operation of `op`."""
    if op.get("f") not in MICRO:
        return
    for mop in op.get("value") or ():
        if mop[0] == "send":
            yield mop[1], *send_value(mop[2])


def send_value(v) -> tuple:
    """A send micro-operation's third element as (offset or None, value)."""
    return (v[0], v[1]) if isinstance(v, (list, tuple)) and len(v) == 2 else (None, v)


def polls(op: dict) -> Iterable[tuple]:
    """(key, offset, value) of each record each poll micro-operation of `op` returned."""
    if op.get("f") not in MICRO:
        return
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


def op_reads(op: dict) -> dict[object, list]:
    """key -> the values `op` polled from it, in the order its polls returned them."""
    return _per_key(polls(op))


def op_writes(op: dict) -> dict[object, list]:
    """key -> the values `op` sent to it, in the order it sent them."""
    return _per_key(sends(op))


def allowed(subscribe: bool, ww_deps: bool) -> frozenset[str]:
    """The anomalies Kafka's design permits (Jepsen's allowed-error-types): transactions'
    sends interleave (int-send-skip) and are not isolated from each other (G0); a
    subscriber may be rebalanced between polls (poll-skip, nonmonotonic-poll); and
    with write-write edges inferred, G1c cycles through them are expected."""
    return frozenset({"int-send-skip", "G0"} | ({"poll-skip", "nonmonotonic-poll"} if subscribe else set())
                     | ({"G1c"} if ww_deps else set()))


@dataclass
class Analysis:
    orders: dict[object, VersionOrder]
    errors: dict[str, list[dict]]
    allowed: frozenset[str] = frozenset()
    judged: int = 0  # acknowledged operations that sent or polled something
    final_read: bool = False
    unread: int = 0  # acknowledged values no poll returned (beyond lost writes)

    @property
    def bad(self) -> list[str]:
        """The anomalies found that Kafka's design does not permit, sorted."""
        return sorted(set(self.errors) - self.allowed)

    @property
    def valid(self) -> bool:
        """No forbidden anomaly, in a history that shows something (Jepsen: an empty
        history is not valid - nothing was tested)."""
        return not self.bad and self.judged > 0

    @property
    def verdict(self) -> tuple[str, str]:
        """VALID, INVALID or UNKNOWN, and why. Without a final read an acknowledged value no
        poll returned may be lost or only unread: a VALID would hide that, so it is UNKNOWN."""
        if self.bad:
            return "INVALID", f"anomalies Kafka forbids: {', '.join(self.bad)}"
        if not self.judged:
            return "UNKNOWN", "no acknowledged send or poll: nothing was tested"
        if not self.final_read and self.unread:
            return "UNKNOWN", (f"{self.unread} acknowledged values were never polled and the history has no final"
                               " read: lost and unread cannot be told apart")
        return "VALID", f"no anomaly Kafka forbids, over {self.judged} acknowledged operations"


class _Parsed:
    """Each completed operation with its sends and polls parsed once: (op, sends, polls),
    the lists of (key, offset, value) that sends() and polls() give."""

    def __init__(self, completed: list[dict]):
        self.rows = [(op, list(sends(op)), list(polls(op))) for op in completed]
        self.read = {(k, v) for _, _, ps in self.rows for k, _, v in ps}

    @functools.cached_property
    def committed_writers(self) -> list[tuple]:
        """The rows whose sends happened: ok ones, and info ones an ok poll read from."""
        infos = [row for row in self.rows if row[0]["type"] == INFO and row[1]]
        read_ok = {(k, v) for op, _, ps in self.rows if op["type"] == OK for k, _, v in ps} if infos else set()
        return [row for row in self.rows if row[0]["type"] == OK or
                (row[0]["type"] == INFO and any((k, v) in read_ok for k, _, v in row[1]))]


def version_orders(history: list[dict], parsed: _Parsed | None = None) -> tuple[dict[object, VersionOrder], list[dict]]:
    """Per key its version order, and the inconsistent offsets (two values at one)."""
    parsed = parsed or _Parsed([op for op in history if op["type"] != INVOKE])
    orders: dict[object, VersionOrder] = defaultdict(VersionOrder)
    for _, ss, _ in parsed.committed_writers:
        for k, offset, v in ss:
            if offset is not None:
                orders[k].log.setdefault(offset, set()).add(v)
    for _, _, ps in parsed.rows:
        for k, offset, v in ps:
            orders[k].log.setdefault(offset, set()).add(v)
    errors = []
    for k, order in orders.items():
        ranks = order.index_of_offset()
        for offset in sorted(order.log):
            if len(order.log[offset]) > 1:
                errors.append({"key": k, "offset": offset, "index": ranks[offset], "values": set(order.log[offset])})
    return dict(orders), errors


def analysis(history: list[dict], final_read: bool = False, ww_deps: bool = False) -> Analysis:
    """Every anomaly this module knows, with its witnesses (empty kinds left out).
    `final_read`: the history ends with Jepsen's final read, so an acknowledged value no
    poll ever returned is `unseen` (without one it may only be unread yet). `ww_deps`:
    infer write-write dependencies from offsets (Jepsen's --ww-deps), for G0 and G1c.
    The nemesis's operations (process "nemesis", as Jepsen's :nemesis) are left out."""
    with without_cyclic_gc():
        return _analysis(history, final_read, ww_deps)


def _analysis(history: list[dict], final_read: bool, ww_deps: bool) -> Analysis:
    from kafkaproof.properties.jepsen_cycles import (
        cycles,  # (it reads this module's micro-operations)
    )

    history = [op for op in history if op.get("process") != NEMESIS]
    parsed = _Parsed([op for op in history if op["type"] != INVOKE])
    orders, inconsistent = version_orders(history, parsed)
    by_value = {k: order.by_value() for k, order in orders.items()}
    by_index = {k: order.by_index() for k, order in orders.items()}
    lost = _lost_writes(parsed, orders)
    lost += _beyond_the_end(parsed, lost)
    unseen = _unseen(parsed, lost)
    errors = {"inconsistent-offsets": inconsistent, "duplicate": _duplicates(orders),
              "G1a": _g1a(parsed), "precommitted-read": _precommitted(parsed), "lost-write": lost,
              "unseen": unseen if final_read else [],
              **_successive(parsed, by_value, by_index), **_internal(parsed, by_value, by_index),
              **cycles(parsed.rows, by_index, ww_deps)}
    subscribe = any(op["f"] == "subscribe" for op in history)
    judged = sum(1 for op, ss, ps in parsed.rows if op["type"] == OK and (ss or ps or op["f"] in MICRO and any(
        mop[0] in ("send", "poll") and len(mop) > 1 for mop in op["value"])))  # (a poll may return nothing)
    return Analysis(orders, {name: found for name, found in errors.items() if found}, allowed(subscribe, ww_deps),
                    judged, final_read, len(unseen))


def _per_key(items: list[tuple]) -> dict[object, list]:
    """key -> the values of (key, offset, value) items, in order (op_reads / op_writes)."""
    out: dict[object, list] = defaultdict(list)
    for k, _, v in items:
        out[k].append(v)
    return out


def _precommitted(parsed: _Parsed) -> list[dict]:
    """An operation that polled a value it sent itself (the first such value per op)."""
    out = []
    for op, ss, ps in parsed.rows:
        if not (ss and ps):
            continue
        reads = {(k, v) for k, _, v in ps}
        bad = [(k, v) for k, _, v in ss if (k, v) in reads]
        if bad:
            out.append({"op": op, "key": bad[0][0], "value": bad[0][1]})
    return out


def _internal(parsed: _Parsed, by_value: dict, by_index: dict) -> dict[str, list[dict]]:
    """int-poll-skip, int-nonmonotonic-poll, int-send-skip and int-nonmonotonic-send:
    successive values one operation polled from (or sent to) a key, against the version
    order; a value whose index is unknown counts as the next one (Jepsen's rule). Keys an
    operation's rebalance log names are not judged: a rebalance may move a consumer."""
    out: dict[str, list[dict]] = {"int-poll-skip": [], "int-nonmonotonic-poll": [],
                                  "int-send-skip": [], "int-nonmonotonic-send": []}
    for op, ss, ps in parsed.rows:
        if len(ss) + len(ps) < 2:
            continue
        rebalanced = {k for entry in op.get("rebalance-log") or () for k in entry.get("keys", ())}
        for kind, items in (("poll", ps), ("send", ss)):
            for k, values in _per_key(items).items():
                if kind == "poll" and k in rebalanced:
                    continue
                at, names = by_value.get(k, {}), by_index.get(k, {})
                for v1, v2 in pairwise(values):
                    i1, i2 = at.get(v1), at.get(v2)
                    delta = i2 - i1 if i1 is not None and i2 is not None else 1
                    if delta > 1:
                        out[f"int-{kind}-skip"].append({"key": k, "values": [v1, v2], "delta": delta, "skipped": [
                            names[i] for i in range(i1 + 1, i2) if i in names], "op": op})
                    elif delta < 1:
                        out[f"int-nonmonotonic-{kind}"].append({"key": k, "values": [v1, v2], "delta": delta,
                                                                "op": op})
    return out


def _successive(parsed: _Parsed, by_value: dict, by_index: dict) -> dict[str, list[dict]]:
    """poll-skip, nonmonotonic-poll and nonmonotonic-send: each operation of a process
    against where its last ok operation left the key."""
    last: dict[tuple, tuple[int, object, dict]] = {}  # (process, kind, key) -> (index, value, op)
    out: dict[str, list[dict]] = {"poll-skip": [], "nonmonotonic-poll": [], "nonmonotonic-send": []}
    for op, ss, ps in parsed.rows:
        if op["f"] in ("assign", "subscribe"):
            keep = set(op.get("value") or ())
            for state in [s for s in last if s[0] == op["process"] and s[2] not in keep]:
                del last[state]
            continue
        for kind, items in (("poll", ps), ("send", ss)):
            if not items:
                continue
            seen: dict[object, list] = defaultdict(list)  # key -> the values in this op, in order
            for k, _, v in items:
                if v in by_value.get(k, ()):
                    seen[k].append(v)
            for k, values in seen.items():
                at = by_value[k]
                first, final = at[values[0]], at[values[-1]]
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


def _beyond_the_end(parsed: _Parsed, lost: list[dict]) -> list[dict]:
    """Acknowledged values at offsets past where the final read found a key's log ending
    (an ok poll's "log-end": {key: offset}, which kafkaproof's final reads record when
    the log no longer reaches the highest acknowledged offset): lost even if a poll read
    them before - Jepsen's own final read would wait for them until it timed out."""
    ends: dict[object, int] = {}
    for op, _, _ in parsed.rows:
        if op["type"] == OK and isinstance(op.get("log-end"), dict):
            ends.update(op["log-end"])
    if not ends:
        return []
    known = {(e["key"], e["value"]) for e in lost}
    return [{"key": k, "value": v, "offset": offset, "log-end": ends[k], "writer": op}
            for op, ss, _ in parsed.rows if op["type"] == OK
            for k, offset, v in ss if k in ends and offset is not None and offset >= ends[k] and (k, v) not in known]


def _unseen(parsed: _Parsed, lost: list[dict]) -> list[dict]:
    """Acknowledged values no poll returned, beyond those already lost writes."""
    known_lost = {(e["key"], e["value"]) for e in lost}
    return [{"key": k, "value": v, "writer": op} for op, ss, _ in parsed.rows if op["type"] == OK
            for k, _, v in ss if (k, v) not in parsed.read and (k, v) not in known_lost]


def _duplicates(orders: dict[object, VersionOrder]) -> list[dict]:
    out = []
    for k, order in orders.items():
        at: dict[object, list[int]] = defaultdict(list)
        for offset in sorted(order.log):
            values = order.log[offset]
            for v in (values if len(values) == 1 else sorted(values, key=repr)):
                at[v].append(offset)
        out += [{"key": k, "value": v, "count": len(offsets), "offsets": offsets}
                for v, offsets in at.items() if len(offsets) > 1]
    return out


def _g1a(parsed: _Parsed) -> list[dict]:
    """A poll read a value a failed operation sent (and no other operation sent it)."""
    failed = {(k, v): op for op, ss, _ in parsed.rows if op["type"] == FAIL for k, _, v in ss}
    if not failed:
        return []
    others = {(k, v) for op, ss, _ in parsed.rows if op["type"] != FAIL for k, _, v in ss}
    return [{"reader": op, "writer": failed[(k, v)], "key": k, "value": v}
            for op, _, ps in parsed.rows if op["type"] == OK
            for k, _, v in ps if (k, v) in failed and (k, v) not in others]


def _lost_writes(parsed: _Parsed, orders: dict[object, VersionOrder]) -> list[dict]:
    """A committed write never read by any poll, below the highest index an ok poll read
    on its key (a read there means the log already held it)."""
    ranks = {k: order.index_of_offset() for k, order in orders.items()}
    highest: dict[object, tuple[int, dict]] = {}  # key -> (index, the poll that read it)
    for op, _, ps in parsed.rows:
        if op["type"] != OK:
            continue
        for k, offset, _ in ps:
            i = ranks[k][offset]
            if k not in highest or i > highest[k][0]:
                highest[k] = (i, op)
    unread = [(op, k, v) for op, ss, _ in parsed.committed_writers for k, _, v in ss
              if (k, v) not in parsed.read and k in highest]
    indexes = {k: orders[k].indexes() for k in {k for _, k, _ in unread}}
    out = []
    for op, k, v in unread:
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
    sends are judged in the order it made them. The nemesis's faults come along as
    Jepsen's nemesis operations (the failure model a verdict names), and a group
    member's assignments as subscribe operations (so Jepsen's rules for subscribers
    apply); transactions are not carried over yet."""
    placed = []  # (position, op)
    invoked: dict[tuple, int] = {}  # (process, value) -> position of the send's invocation
    ends: dict[str, int] = {}
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
            placed.append((at, {"time": op.time * NS, "process": op.process, "type": op.type, "f": "send",
                                "value": [mop]}))
        elif op.f == "poll":
            read: dict[str, list] = defaultdict(list)
            for topic, partition, offset, _, value in op.records:
                read[f"{topic}-{partition}"].append([offset, value])
            placed.append((float(op.index), {"time": op.time * NS, "process": op.process, "type": op.type, "f": "poll",
                                             "value": [["poll", dict(read)] if op.type != INVOKE else ["poll"]]}))
        elif op.f == "assigned":  # a group member's new assignment: Jepsen's subscribe, its keys those assigned
            keys = [f"{t}-{p}" for t, p, *_ in op.records]
            for type_ in (INVOKE, OK):
                placed.append((float(op.index), {"time": op.time * NS, "process": op.process, "type": type_,
                                                 "f": "subscribe", "value": keys}))
        elif op.f == "log-end":  # the final read found this key's log ending below an acknowledged offset
            ends[f"{op.topic}-{op.partition}"] = op.offset
        elif op.process == NEMESIS:
            placed.append((float(op.index), {"time": op.time * NS, "process": NEMESIS, "type": op.type, "f": op.f,
                                             "value": op.value}))
    placed.sort(key=lambda item: item[0])
    out = [{"index": i, **op} for i, (_, op) in enumerate(placed)]
    if ends:
        last = max(i for i, op in enumerate(out) if op["f"] == "poll" and op["type"] == OK)
        out[last]["log-end"] = ends
    return out
