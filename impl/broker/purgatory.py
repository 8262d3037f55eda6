"""The Purgatory: requests that cannot be answered yet (seed notes, "Purgatory").

A produce with acks=all waits until the high watermark passes its last offset; a
fetch waits until `fetch.min.bytes` are available. Each waits at most its timeout.
The purgatory only keeps them, indexed by partition and by id (for their timers);
deciding when one is complete belongs to the partition that owns the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafkaproof.impl.protocol.messages import FetchRequest, ProduceRequest, TopicPartition


@dataclass
class DelayedProduce:
    id: int
    src: str
    request: ProduceRequest
    base_offset: int
    required_offset: int  # the HW must reach this (last offset + 1)
    deadline: int
    # How to answer, when not with a ProduceResponse (a transaction marker's writer):
    # called with the error and the broker's Effects.
    answer: Callable[[Any, Any], None] | None = None


@dataclass
class DelayedFetch:
    id: int
    src: str
    request: FetchRequest
    deadline: int


Delayed = DelayedProduce | DelayedFetch


class Purgatory:
    def __init__(self) -> None:
        self._by_tp: dict[TopicPartition, list[Delayed]] = {}
        self._by_id: dict[int, Delayed] = {}
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._by_id)

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add(self, op: Delayed) -> None:
        self._by_tp.setdefault(op.request.tp, []).append(op)
        self._by_id[op.id] = op

    def pop_id(self, op_id: int) -> Delayed | None:
        op = self._by_id.pop(op_id, None)
        if op is not None:
            self._by_tp[op.request.tp].remove(op)
        return op

    def pop_where(self, tp: TopicPartition, ready: Callable[[Delayed], bool]) -> list[Delayed]:
        """Remove and return, in arrival order, the ops on `tp` that `ready` accepts."""
        ops = self._by_tp.get(tp, [])
        done = [op for op in ops if ready(op)]
        if done:
            self._by_tp[tp] = [op for op in ops if op not in done]
            for op in done:
                del self._by_id[op.id]
        return done
