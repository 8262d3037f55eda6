"""A small model of transactions (KIP-98) and KIP-890's defence against late markers.

One transactional producer, its coordinator, and `partitions` partitions; replication
is abstracted away (each partition is one log). What is modelled is the two-phase
commit: the coordinator's states, the markers it sends, the network that may deliver a
marker twice and late, and each partition's producer state (its epoch, and whether a
transaction is open there). State (tuples, so states hash):

    coord      (state, epoch, partitions of the current transaction, its number)
               state: Empty | Ongoing | PrepareCommit | PrepareAbort
    producer   (epoch, number of the transaction it is in or 0, writes it may still make)
    logs       per partition: entries ("data", txn, epoch) or ("COMMIT"/"ABORT", epoch)
    pstate     per partition: (epoch, open?) - the partition's producer state
    wire       markers on the way: (partition, kind, epoch, transaction), a multiset (sorted
               tuple); the transaction number stands for the request's correlation id
    pending    partitions whose marker the coordinator still waits for
    outcomes   (txn, "committed"/"aborted") as the coordinator decided
    dups       duplicate deliveries the search may still spend

Actions: Begin; Write(p) (AddPartitionsToTxn then produce; with KIP-890 the leader
verifies a first write with the coordinator); End(commit|abort) (Prepare, then markers
on the wire; KIP-890 bumps the epoch and the producer takes it); Deliver(marker) (the
leader checks the epoch: strictly newer with KIP-890, not older before it); a
duplicate delivery that leaves a copy on the wire (late); Complete once every partition
answered.

Invariants (Jepsen's names): NoAbortedRead (G1a: data of an aborted transaction is
followed by a COMMIT marker of its producer) and NoLostCommit (data of a committed
transaction followed by an ABORT marker: a torn or lost transaction).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

EMPTY, ONGOING = "Empty", "Ongoing"
PREPARE = {"COMMIT": "PrepareCommit", "ABORT": "PrepareAbort"}


class TxnState(NamedTuple):
    coord: tuple[str, int, tuple[int, ...], int]
    producer: tuple[int, int, int]
    logs: tuple[tuple[tuple, ...], ...]
    pstate: tuple[tuple[int, bool], ...]
    wire: tuple[tuple[int, str, int, int], ...]
    pending: tuple[int, ...]
    outcomes: tuple[tuple[int, str], ...]
    dups: int


@dataclass(frozen=True)
class TxnBounds:
    partitions: int = 2
    transactions: int = 2
    writes: int = 2  # per transaction
    duplicates: int = 1  # late duplicate marker deliveries
    kip890: bool = True


def marker_accepted(pstate: tuple[int, bool], epoch: int, kip890: bool) -> bool:
    """The partition leader's rule for a marker (ProducerAppendInfo.checkProducerEpoch):
    shared with impl/broker/producer_state.py's check_marker and tested against it."""
    current, open_ = pstate
    if kip890:
        return epoch > current or (epoch == current and not open_)
    return epoch >= current


class TxnModel:
    def __init__(self, bounds: TxnBounds | None = None) -> None:
        self.bounds = bounds or TxnBounds()
        b = self.bounds
        self.variant = (f"transactions(kip890={str(b.kip890).lower()}, partitions={b.partitions},"
                        f" transactions={b.transactions}, late duplicates={b.duplicates})")

    def initial(self) -> TxnState:
        n = self.bounds.partitions
        return TxnState((EMPTY, 0, (), 0), (0, 0, 0), ((),) * n, ((-1, False),) * n, (), (), (),
                        self.bounds.duplicates)

    def actions(self, s: TxnState) -> Iterator[tuple[str, TxnState]]:
        yield from self.begin(s)
        yield from self.write(s)
        yield from self.end(s)
        yield from self.deliver(s)
        yield from self.complete(s)

    def begin(self, s: TxnState):
        epoch, txn, _ = s.producer
        last = s.coord[3]
        if txn == 0 and last < self.bounds.transactions and s.coord[0] not in PREPARE.values():
            yield f"Begin(T{last + 1})", s._replace(producer=(epoch, last + 1, self.bounds.writes))

    def write(self, s: TxnState):
        epoch, txn, left = s.producer
        state, cepoch, parts, _ = s.coord
        if txn == 0 or left == 0 or state in PREPARE.values():
            return  # (AddPartitionsToTxn answers CONCURRENT_TRANSACTIONS while markers are out)
        for p in range(self.bounds.partitions):
            pe, open_ = s.pstate[p]
            if epoch < pe:
                continue  # fenced: INVALID_PRODUCER_EPOCH
            coord = (ONGOING, cepoch, tuple(sorted(set(parts) | {p})), txn)
            logs = s.logs[:p] + (s.logs[p] + (("data", txn, epoch),),) + s.logs[p + 1:]
            pstate = s.pstate[:p] + ((epoch, True),) + s.pstate[p + 1:]
            yield f"Write(T{txn}, p{p})", s._replace(coord=coord, producer=(epoch, txn, left - 1), logs=logs,
                                                     pstate=pstate)

    def end(self, s: TxnState):
        epoch, txn, _ = s.producer
        state, cepoch, parts, number = s.coord
        if txn == 0 or state != ONGOING:
            return
        for kind, outcome in (("COMMIT", "committed"), ("ABORT", "aborted")):
            new_epoch = cepoch + 1 if self.bounds.kip890 else cepoch
            wire = tuple(sorted(s.wire + tuple((p, kind, new_epoch, number) for p in parts)))
            yield (f"End(T{txn}, {kind})",
                   s._replace(coord=(PREPARE[kind], new_epoch, parts, number), producer=(new_epoch, 0, 0),
                              wire=wire, pending=parts, outcomes=s.outcomes + ((txn, outcome),)))

    def deliver(self, s: TxnState):
        for i, (p, kind, epoch, number) in enumerate(s.wire):
            if i and s.wire[i - 1] == s.wire[i]:
                continue  # the same marker twice: one choice
            rest = s.wire[:i] + s.wire[i + 1:]
            # Only the answer to the coordinator's own marker counts (it pairs answers with
            # requests); a late copy of an earlier transaction's marker is no answer.
            current = s.coord[0] == PREPARE[kind] and s.coord[3] == number
            pending = tuple(x for x in s.pending if x != p) if current else s.pending
            if marker_accepted(s.pstate[p], epoch, self.bounds.kip890):
                logs = s.logs[:p] + (s.logs[p] + ((kind, epoch),),) + s.logs[p + 1:]
                pstate = s.pstate[:p] + ((max(epoch, s.pstate[p][0]), False),) + s.pstate[p + 1:]
                after = s._replace(logs=logs, pstate=pstate)
                label = f"Deliver({kind} e{epoch} -> p{p})"
            else:
                after, label = s, f"Reject({kind} e{epoch} at p{p}, stale epoch)"
            yield label, after._replace(wire=rest, pending=pending)
            if s.dups > 0:
                yield (label + ", a copy arrives again later",
                       after._replace(pending=pending, dups=s.dups - 1))

    def complete(self, s: TxnState):
        state, cepoch, parts, number = s.coord
        if state in PREPARE.values() and not s.pending:
            yield f"Complete(T{number})", s._replace(coord=(EMPTY, cepoch, (), number))

    def invariants(self, s: TxnState) -> list[tuple[str, str]]:
        outcome = dict(s.outcomes)
        bad = []
        for p, log in enumerate(s.logs):
            open_txns: list[int] = []
            for entry in log:
                if entry[0] == "data":
                    open_txns.append(entry[1])
                    continue
                for txn in open_txns:
                    if entry[0] == "COMMIT" and outcome.get(txn) == "aborted":
                        bad.append(("NoAbortedRead", f"p{p}: T{txn} was aborted, but a COMMIT marker follows"
                                                     f" its write: {list(log)}"))
                    if entry[0] == "ABORT" and outcome.get(txn) == "committed":
                        bad.append(("NoLostCommit", f"p{p}: T{txn} was committed, but an ABORT marker follows"
                                                    f" its write: {list(log)}"))
                open_txns = []
        return bad

    @staticmethod
    def describe(s: TxnState) -> str:
        state, epoch, parts, number = s.coord
        logs = "; ".join(f"p{p} {list(log)}" for p, log in enumerate(s.logs))
        return (f"coordinator {state} epoch {epoch} T{number} {list(parts)}; producer epoch {s.producer[0]}"
                f" in T{s.producer[1]}; {logs}; markers on the wire {list(s.wire)}")
