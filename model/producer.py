"""A small model of one producer writing to one partition: sequence numbers, retries,
in-flight requests and the broker's duplicate detection (idempotence, KIP-98).

Replication is abstracted away (the partition is one log); what is modelled is the
producer session against the partition leader, where duplicates and reordering come
from. State (tuples, so states hash):

    log        record ids in the partition, in offset order
    wire       requests on the way to the broker, in order (one TCP connection):
               (record id, sequence number, producer epoch)
    answers    responses on the way back, in order: (record id, sequence, epoch, answer)
               with answer "ok", "error" (retriable, or the answer lost) or
               "out-of-order" (OUT_OF_ORDER_SEQUENCE_NUMBER)
    next_id    records the application has handed to send() so far
    last_seq   the broker's last appended sequence for this producer (-1: none)
    retries    retries the producer may still make (bounds the search)
    acked      record ids the producer was told were written
    epoch      the producer's epoch; b_epoch the broker's for it; seqs the sequences
               the broker holds in b_epoch; base the first record id of the epoch
    bump       the producer must bump its epoch (KIP-360); failed: records it gave up
    breaks     broken sequences the search may still inject

Each record is one batch, so its sequence number is its id less the epoch's first. A
broker step may append
and answer ok, append and lose the answer (the producer times out: the outcome it
sees is an error), or fail without appending (NOT_LEADER_OR_FOLLOWER and friends).
With idempotence the broker answers a sequence it already has as a success without
appending (DUPLICATE_SEQUENCE_NUMBER) and refuses one that skips ahead
(OUT_OF_ORDER_SEQUENCE_NUMBER, which the producer retries). A retry goes behind the
requests already in flight, which is how max.in.flight.requests.per.connection > 1
reorders a non-idempotent producer's writes (Kafka's documentation of that setting).

KIP-360: the broker's producer state may stop matching the producer's sequence for good
(`BrokerSequenceBroken`: it expects a later sequence, as after a truncation took the
producer's last batches). The batch is refused OUT_OF_ORDER_SEQUENCE_NUMBER with nothing
earlier in flight to wait for; the producer fails it to the application, waits for what
is in flight, and bumps its epoch: the same producer id, sequences from 0, which the
broker takes as a new epoch. Resetting the sequences *without* a new epoch would make the
broker take new records for duplicates of old ones and answer them ok unwritten.

Invariants: NoDuplicates (each record at most once in the log), SendOrder (the log holds
records in the order they were sent; Jepsen's nonmonotonic-send) and AckedInLog (every
record the producer was told was written is in the log).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple


class ProducerState(NamedTuple):
    log: tuple[int, ...]
    wire: tuple[tuple[int, int, int], ...]
    answers: tuple[tuple[int, int, int, str], ...]
    next_id: int
    last_seq: int
    retries: int
    acked: tuple[int, ...]
    epoch: int = 0
    b_epoch: int = 0
    seqs: tuple[int, ...] = ()
    base: int = 0
    bump: bool = False
    failed: tuple[int, ...] = ()
    breaks: int = 0


@dataclass(frozen=True)
class ProducerBounds:
    records: int = 3
    idempotence: bool = True  # enable.idempotence
    max_in_flight: int = 5  # max.in.flight.requests.per.connection
    retries: int = 2  # retries the search may spend (Kafka's default is effectively unbounded)
    sequence_breaks: int = 0  # times the broker's producer state may stop matching (KIP-360)


class ProducerModel:
    def __init__(self, bounds: ProducerBounds | None = None) -> None:
        self.bounds = bounds or ProducerBounds()
        b = self.bounds
        if b.idempotence and b.max_in_flight > 5:
            # KafkaProducer refuses this combination (ConfigException): the broker keeps
            # the last five batches per producer only.
            raise ValueError("enable.idempotence requires max.in.flight.requests.per.connection <= 5")
        self.variant = (f"producer(enable.idempotence={str(b.idempotence).lower()}, "
                        f"max.in.flight={b.max_in_flight}, retries={b.retries}"
                        f"{f', sequence breaks={b.sequence_breaks}' if b.sequence_breaks else ''})")

    def initial(self) -> ProducerState:
        return ProducerState((), (), (), 0, -1, self.bounds.retries, (), breaks=self.bounds.sequence_breaks)

    def actions(self, s: ProducerState) -> Iterator[tuple[str, ProducerState]]:
        yield from self.send(s)
        yield from self.broker_handle(s)
        yield from self.producer_receive(s)
        yield from self.broker_sequence_broken(s)
        yield from self.producer_bumps_epoch(s)

    def send(self, s: ProducerState):
        # (a producer that must bump its epoch holds new batches until it has)
        if s.next_id < self.bounds.records and len(s.wire) + len(s.answers) < self.bounds.max_in_flight and not s.bump:
            rid = s.next_id
            yield f"Send(record {rid})", s._replace(wire=s.wire + ((rid, rid - s.base, s.epoch),), next_id=rid + 1)

    def broker_handle(self, s: ProducerState):
        if not s.wire:
            return
        (rid, seq, epoch), rest = s.wire[0], s.wire[1:]
        yield (f"BrokerRejects(record {rid}, not leader)",
               s._replace(wire=rest, answers=s.answers + ((rid, seq, epoch, "error"),)))
        if self.bounds.idempotence and epoch < s.b_epoch:
            return  # fenced: INVALID_PRODUCER_EPOCH (an error like any other to the model's producer)
        new_epoch = self.bounds.idempotence and epoch > s.b_epoch  # a bumped epoch starts at sequence 0
        last, seqs = (-1, ()) if new_epoch else (s.last_seq, s.seqs)
        if self.bounds.idempotence and seq in seqs:
            yield (f"BrokerDeduplicates(record {rid})",
                   s._replace(wire=rest, answers=s.answers + ((rid, seq, epoch, "ok"),)))
            return
        if self.bounds.idempotence and seq != last + 1:
            yield (f"BrokerRejects(record {rid}, out of order sequence {seq} after {last})",
                   s._replace(wire=rest, answers=s.answers + ((rid, seq, epoch, "out-of-order"),)))
            return
        appended = s._replace(wire=rest, log=s.log + (rid,), last_seq=max(last, seq), seqs=seqs + (seq,),
                              b_epoch=max(s.b_epoch, epoch))
        yield f"BrokerAppends(record {rid})", appended._replace(answers=s.answers + ((rid, seq, epoch, "ok"),))
        yield (f"BrokerAppends(record {rid}), answer lost",
               appended._replace(answers=s.answers + ((rid, seq, epoch, "error"),)))

    def broker_sequence_broken(self, s: ProducerState):
        """The broker's state for the producer stops matching: it expects a later sequence."""
        if s.breaks > 0:
            yield "BrokerSequenceBroken", s._replace(last_seq=s.last_seq + 2, breaks=s.breaks - 1)

    def producer_receive(self, s: ProducerState):
        if not s.answers:
            return
        (rid, seq, epoch, answer), rest = s.answers[0], s.answers[1:]
        earlier = any(e == epoch and q < seq for _, q, e in s.wire) or any(
            e == epoch and q < seq and a != "ok" for _, q, e, a in rest)
        if answer == "ok":
            yield f"ProducerAcked(record {rid})", s._replace(answers=rest, acked=s.acked + (rid,))
        elif answer == "out-of-order" and not earlier and epoch == s.epoch:
            # KIP-360: nothing earlier to wait for, so the sequence is broken for good: fail
            # the batch to the application and bump the epoch once nothing is in flight.
            yield f"ProducerFails(record {rid}, out of order sequence)", s._replace(
                answers=rest, failed=s.failed + (rid,), bump=True)
        elif s.retries > 0 and epoch == s.epoch:
            yield f"ProducerRetries(record {rid})", s._replace(answers=rest, wire=s.wire + ((rid, seq, epoch),),
                                                               retries=s.retries - 1)
        else:
            yield f"ProducerGivesUp(record {rid})", s._replace(answers=rest, failed=s.failed + (rid,))

    def producer_bumps_epoch(self, s: ProducerState):
        """InitProducerId with the current producer id and epoch: the epoch goes up by one and
        the sequences start again from 0 (KIP-360), once nothing is in flight."""
        if s.bump and not s.wire and not s.answers:
            yield f"ProducerBumpsEpoch(to {s.epoch + 1})", s._replace(epoch=s.epoch + 1, base=s.next_id, bump=False)

    def invariants(self, s: ProducerState) -> list[tuple[str, str]]:
        bad = []
        seen = set()
        for rid in s.log:
            if rid in seen:
                bad.append(("NoDuplicates", f"record {rid} is in the log twice: {list(s.log)}"))
                break
            seen.add(rid)
        if any(a > b for a, b in zip(s.log, s.log[1:], strict=False)):
            bad.append(("SendOrder", f"the log {list(s.log)} is not in send order"))
        unwritten = [rid for rid in s.acked if rid not in s.log]
        if unwritten:
            bad.append(("AckedInLog", f"records {unwritten} acknowledged but not in the log {list(s.log)}"))
        return bad

    @staticmethod
    def describe(s: ProducerState) -> str:
        return (f"log {list(s.log)}; on the wire {[r for r, _, _ in s.wire]}; answers "
                f"{[(r, a) for r, _, _, a in s.answers]}; broker last sequence {s.last_seq} (epoch {s.b_epoch});"
                f" acked {list(s.acked)}; failed {list(s.failed)}; producer epoch {s.epoch}; retries left {s.retries}")
