"""The consumer as a sans-IO state machine: manual assignment, poll, position, seek.

It fetches each assigned partition from its leader (followers never serve reads),
carrying the leader epoch it knows (KIP-320) so a stale leader cannot serve it.
Its position only moves forward unless the application seeks. Groups and offset
commits arrive with the consumer-groups issue; `assign` is the seam they will use.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from kafkaproof.impl.client.base import ClientBase
from kafkaproof.impl.client.config import ConsumerConfig
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import CorruptRecordError, ErrorCode
from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.records import Record, decode_batch


@dataclass
class FetchPosition:
    offset: int | None = None  # None until reset by auto.offset.reset
    inflight: int | None = None  # correlation id of the outstanding fetch or list-offsets
    retry_at: int = 0


class Consumer(ClientBase):
    def __init__(self, node: str, config: ConsumerConfig, bootstrap: list[str], rng: random.Random) -> None:
        super().__init__(node, bootstrap, rng)
        self.config = config
        self.assignment: dict[TopicPartition, FetchPosition] = {}
        self.buffer: list[tuple[TopicPartition, Record]] = []
        self.leaders: dict[TopicPartition, tuple[int, int]] = {}  # tp -> (leader, epoch)
        self.errors: list[tuple[TopicPartition, ErrorCode]] = []
        self._requests: dict[int, tuple[str, TopicPartition | None, int]] = {}  # corr -> (kind, tp, offset)
        self._request_node: dict[int, str] = {}

    # -- application API ------------------------------------------------------------------

    def assign(self, tps: list[TopicPartition], now: int) -> list:
        self.assignment = {tp: self.assignment.get(tp, FetchPosition()) for tp in tps}
        fx = Effects()
        self._request_metadata(now, fx)
        return fx.items

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.assignment[tp] = FetchPosition(offset)
        self.buffer = [(t, r) for t, r in self.buffer if t != tp]

    def position(self, tp: TopicPartition) -> int | None:
        return self.assignment[tp].offset

    def poll(self, now: int) -> tuple[list[tuple[TopicPartition, Record]], list]:
        """Records fetched so far (at most max.poll.records); starts fetches as needed."""
        fx = Effects()
        self._fetch_all(now, fx)
        out, self.buffer = self.buffer[: self.config.max_poll_records], self.buffer[self.config.max_poll_records :]
        return out, fx.items

    # -- requests -------------------------------------------------------------------------

    def _request_metadata(self, now: int, fx: Effects) -> None:
        if any(kind == "metadata" for kind, _, _ in self._requests.values()):
            return
        corr = self._next_corr()
        node = self._next_bootstrap()
        self._requests[corr] = ("metadata", None, 0)
        fx.send(node, m.MetadataRequest(corr, tuple(sorted({tp.topic for tp in self.assignment}))))
        fx.timer(("timeout", corr), now + self.config.request_timeout_ms)

    def _fetch_all(self, now: int, fx: Effects) -> None:
        for tp in sorted(self.assignment):
            pos = self.assignment[tp]
            if pos.inflight is not None or pos.retry_at > now:
                continue
            leader, epoch = self.leaders.get(tp, (m.NO_LEADER, -1))
            if leader == m.NO_LEADER:
                self._request_metadata(now, fx)
                continue
            corr = self._next_corr()
            if pos.offset is None:
                ts = m.EARLIEST_TIMESTAMP if self.config.auto_offset_reset == "earliest" else m.LATEST_TIMESTAMP
                msg: object = m.ListOffsetsRequest(corr, tp, ts, epoch)
                self._requests[corr] = ("list", tp, -1)
            else:
                msg = m.FetchRequest(corr, tp, m.CONSUMER_REPLICA_ID, pos.offset, epoch,
                                     self.config.max_partition_fetch_bytes, self.config.fetch_max_wait_ms,
                                     self.config.fetch_min_bytes)
                self._requests[corr] = ("fetch", tp, pos.offset)
            pos.inflight = corr
            self._request_node[corr] = m.broker_node(leader)
            fx.send(m.broker_node(leader), msg)
            fx.timer(("timeout", corr), now + self.config.request_timeout_ms + self.config.fetch_max_wait_ms)

    # -- responses ------------------------------------------------------------------------

    def handle(self, src: str, msg: object, now: int) -> list:
        fx = Effects()
        if isinstance(msg, m.Disconnected):
            for corr in sorted(c for c, node in self._request_node.items() if node == msg.node):
                fx.items += self.on_timer(("timeout", corr), now)  # will never be answered: fail it now
            return fx.items
        self._request_node.pop(getattr(msg, "correlation_id", -1), None)
        req = self._requests.pop(getattr(msg, "correlation_id", -1), None)
        if req is None:
            return fx.items
        kind, tp, offset = req
        if isinstance(msg, m.MetadataResponse):
            for pm in msg.partitions:
                self.leaders[pm.tp] = (pm.leader, pm.leader_epoch)
            return fx.items
        pos = self.assignment.get(tp)
        if pos is None or pos.inflight != msg.correlation_id:
            return fx.items
        pos.inflight = None
        if msg.error != ErrorCode.NONE:
            self._on_error(tp, pos, msg.error, now, fx)
        elif isinstance(msg, m.ListOffsetsResponse):
            pos.offset = msg.offset
        elif isinstance(msg, m.FetchResponse) and offset == pos.offset:
            self._take_records(tp, pos, msg.records)
        return fx.items

    def _take_records(self, tp: TopicPartition, pos: FetchPosition, data: bytes) -> None:
        at = 0
        while at < len(data):
            try:
                batch = decode_batch(data, at)
            except CorruptRecordError:
                self.errors.append((tp, ErrorCode.CORRUPT_MESSAGE))
                return
            at += batch.header.size
            if not batch.header.is_control:
                self.buffer += [(tp, r) for r in batch.records if r.offset >= pos.offset]
            pos.offset = max(pos.offset, batch.header.next_offset)

    def _on_error(self, tp: TopicPartition, pos: FetchPosition, error: ErrorCode, now: int, fx: Effects) -> None:
        if error == ErrorCode.OFFSET_OUT_OF_RANGE:
            if self.config.auto_offset_reset == "none":
                self.errors.append((tp, error))
            pos.offset = None  # reset by auto.offset.reset on the next fetch
        else:
            self.leaders.pop(tp, None)
            self._request_metadata(now, fx)
        pos.retry_at = now + self.config.retry_backoff_ms

    def on_timer(self, key: tuple, now: int) -> list:
        fx = Effects()
        if key[0] == "timeout":
            self._request_node.pop(key[1], None)
            req = self._requests.pop(key[1], None)
            if req is not None and req[1] is not None:
                pos = self.assignment.get(req[1])
                if pos is not None and pos.inflight == key[1]:
                    pos.inflight = None
                    self._on_error(req[1], pos, ErrorCode.NETWORK_EXCEPTION, now, fx)
        return fx.items
