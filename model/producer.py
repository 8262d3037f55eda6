"""A small model of one producer writing to one partition: sequence numbers, retries,
in-flight requests and the broker's duplicate detection (idempotence, KIP-98).

Replication is abstracted away (the partition is one log); what is modelled is the
producer session against the partition leader, where duplicates and reordering come
from. State (tuples, so states hash):

    log        record ids in the partition, in offset order
    wire       requests on the way to the broker, in order (one TCP connection):
               (record id, sequence number)
    answers    responses on the way back, in order: (record id, sequence, ok?)
    next_id    records the application has handed to send() so far
    last_seq   the broker's last appended sequence for this producer (-1: none)
    retries    retries the producer may still make (bounds the search)
    acked      record ids the producer was told were written

Each record is one batch, so its sequence number is its id. A broker step may append
and answer ok, append and lose the answer (the producer times out: the outcome it
sees is an error), or fail without appending (NOT_LEADER_OR_FOLLOWER and friends).
With idempotence the broker answers a sequence it already has as a success without
appending (DUPLICATE_SEQUENCE_NUMBER) and refuses one that skips ahead
(OUT_OF_ORDER_SEQUENCE_NUMBER, which the producer retries). A retry goes behind the
requests already in flight, which is how max.in.flight.requests.per.connection > 1
reorders a non-idempotent producer's writes (Kafka's documentation of that setting).

Invariants: NoDuplicates (each record at most once in the log) and SendOrder (the log
holds records in the order they were sent; Jepsen's nonmonotonic-send).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple


class ProducerState(NamedTuple):
    log: tuple[int, ...]
    wire: tuple[tuple[int, int], ...]
    answers: tuple[tuple[int, int, bool], ...]
    next_id: int
    last_seq: int
    retries: int
    acked: tuple[int, ...]


@dataclass(frozen=True)
class ProducerBounds:
    records: int = 3
    idempotence: bool = True  # enable.idempotence
    max_in_flight: int = 5  # max.in.flight.requests.per.connection
    retries: int = 2  # retries the search may spend (Kafka's default is effectively unbounded)


class ProducerModel:
    def __init__(self, bounds: ProducerBounds | None = None) -> None:
        self.bounds = bounds or ProducerBounds()
        b = self.bounds
        if b.idempotence and b.max_in_flight > 5:
            # KafkaProducer refuses this combination (ConfigException): the broker keeps
            # the last five batches per producer only.
            raise ValueError("enable.idempotence requires max.in.flight.requests.per.connection <= 5")
        self.variant = (f"producer(enable.idempotence={str(b.idempotence).lower()}, "
                        f"max.in.flight={b.max_in_flight}, retries={b.retries})")

    def initial(self) -> ProducerState:
        return ProducerState((), (), (), 0, -1, self.bounds.retries, ())

    def actions(self, s: ProducerState) -> Iterator[tuple[str, ProducerState]]:
        yield from self.send(s)
        yield from self.broker_handle(s)
        yield from self.producer_receive(s)

    def send(self, s: ProducerState):
        if s.next_id < self.bounds.records and len(s.wire) + len(s.answers) < self.bounds.max_in_flight:
            rid = s.next_id
            yield f"Send(record {rid})", s._replace(wire=s.wire + ((rid, rid),), next_id=rid + 1)

    def broker_handle(self, s: ProducerState):
        if not s.wire:
            return
        (rid, seq), rest = s.wire[0], s.wire[1:]
        yield f"BrokerRejects(record {rid}, not leader)", s._replace(wire=rest, answers=s.answers + ((rid, seq, False),))
        if self.bounds.idempotence and seq <= s.last_seq:
            yield f"BrokerDeduplicates(record {rid})", s._replace(wire=rest, answers=s.answers + ((rid, seq, True),))
            return
        if self.bounds.idempotence and seq > s.last_seq + 1:
            yield (f"BrokerRejects(record {rid}, out of order sequence {seq} after {s.last_seq})",
                   s._replace(wire=rest, answers=s.answers + ((rid, seq, False),)))
            return
        appended = s._replace(wire=rest, log=s.log + (rid,), last_seq=max(s.last_seq, seq))
        yield f"BrokerAppends(record {rid})", appended._replace(answers=s.answers + ((rid, seq, True),))
        yield (f"BrokerAppends(record {rid}), answer lost",
               appended._replace(answers=s.answers + ((rid, seq, False),)))

    def producer_receive(self, s: ProducerState):
        if not s.answers:
            return
        (rid, seq, ok), rest = s.answers[0], s.answers[1:]
        if ok:
            yield f"ProducerAcked(record {rid})", s._replace(answers=rest, acked=s.acked + (rid,))
        elif s.retries > 0:
            yield f"ProducerRetries(record {rid})", s._replace(answers=rest, wire=s.wire + ((rid, seq),),
                                                               retries=s.retries - 1)
        else:
            yield f"ProducerGivesUp(record {rid})", s._replace(answers=rest)

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
        return bad

    @staticmethod
    def describe(s: ProducerState) -> str:
        return (f"log {list(s.log)}; on the wire {[r for r, _ in s.wire]}; answers "
                f"{[(r, 'ok' if ok else 'error') for r, _, ok in s.answers]}; broker last sequence {s.last_seq};"
                f" acked {list(s.acked)}; retries left {s.retries}")
