"""The consumer as a sans-IO state machine: assign or subscribe, poll, seek, commit.

It fetches each assigned partition from its leader (followers never serve reads),
carrying the leader epoch it knows (KIP-320) so a stale leader cannot serve it.
Its position only moves forward unless the application seeks. With a group.id it can
`subscribe` (topics or a pattern) and let its group assign partitions
(impl/client/membership.py), and commit offsets: the committed offset of a partition
is the *next* one to read, i.e. the position after the records poll has returned.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from kafkaproof.impl.client.base import ClientBase
from kafkaproof.impl.client.config import ConsumerConfig
from kafkaproof.impl.client.membership import CommitCallback, GroupMembership, RebalanceListener
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import CorruptRecordError, ErrorCode
from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.process import Dispatcher, handles
from kafkaproof.impl.protocol.records import Record, RecordBatch, decode_batch


def visible_batches(batches: Iterable[RecordBatch], aborted: Iterable[tuple[int, int]] = ()) -> Iterator[RecordBatch]:
    """The data batches a consumer returns: no markers, and none of an aborted
    transaction - (producer id, first offset) as the broker lists them for
    read_committed - from its first offset until its producer's next marker
    (Kafka's Fetcher.CompletedFetch)."""
    upcoming = sorted(aborted, key=lambda a: a[1])
    aborting: set[int] = set()
    for batch in batches:
        h = batch.header
        while upcoming and upcoming[0][1] <= h.last_offset:
            aborting.add(upcoming.pop(0)[0])
        if h.is_control:
            aborting.discard(h.producer_id)  # its transaction ends here
        elif not (h.is_transactional and h.producer_id in aborting):
            yield batch


@dataclass
class FetchPosition:
    offset: int | None = None  # None until reset by auto.offset.reset
    inflight: int | None = None  # correlation id of the outstanding fetch or list-offsets
    retry_at: int = 0
    ready: bool = True  # False while the group's committed offset is being fetched


class Consumer(ClientBase, Dispatcher):
    def __init__(self, node: str, config: ConsumerConfig, bootstrap: list[str], rng: random.Random) -> None:
        super().__init__(node, bootstrap, rng)
        self.config = config
        self.assignment: dict[TopicPartition, FetchPosition] = {}
        self.buffer: list[tuple[TopicPartition, Record]] = []
        self.leaders: dict[TopicPartition, tuple[int, int]] = {}  # tp -> (leader, epoch)
        self.errors: list[tuple[TopicPartition, ErrorCode]] = []
        self._requests: dict[int, tuple[str, TopicPartition | None, int]] = {}  # corr -> (kind, tp, offset)
        self._request_node: dict[int, str] = {}
        self.partition_counts: dict[str, int] = {}  # from metadata
        self.consumed: dict[TopicPartition, int] = {}  # position after the records poll returned
        self.group = GroupMembership(self, config.group_id) if config.group_id else None
        self._next_auto_commit = 0
        self.isolation = m.READ_COMMITTED if config.isolation_level == "read_committed" else m.READ_UNCOMMITTED

    def start(self, now: int) -> list:
        return []  # a consumer acts once the application assigns or subscribes

    # -- application API ------------------------------------------------------------------

    def assign(self, tps: list[TopicPartition], now: int) -> list:
        self.set_assignment(tps, from_group=False)
        fx = Effects()
        self._request_metadata(now, fx)
        return fx.items

    def subscribe(self, now: int, topics: list[str] | None = None, pattern: str | None = None,
                  listener: RebalanceListener | None = None) -> list:
        if self.group is None:
            raise ValueError("subscribe needs a group.id (InvalidGroupIdException in Kafka)")
        self.group.subscribe(topics, pattern, listener)
        fx = Effects()
        self._request_metadata(now, fx)
        fx.timer(("metadata-refresh",), now + self.config.metadata_max_age_ms)
        fx.timer(("heartbeat",), now + self.config.heartbeat_interval_ms)
        return fx.items

    def set_assignment(self, tps: list[TopicPartition], from_group: bool) -> None:
        """Keep the positions of partitions we keep; new ones start from the group's
        committed offset (from_group) or auto.offset.reset."""
        self.assignment = {tp: self.assignment.get(tp) or FetchPosition(ready=not from_group) for tp in tps}
        self.buffer = [(tp, r) for tp, r in self.buffer if tp in self.assignment]
        self.consumed = {tp: o for tp, o in self.consumed.items() if tp in self.assignment}

    def committed_positions(self, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            pos = self.assignment.get(tp)
            if pos is None or pos.ready:
                continue
            pos.ready = True
            if offset >= 0:
                pos.offset = offset
                self.consumed[tp] = offset
            elif self.config.auto_offset_reset == "none":
                self.errors.append((tp, ErrorCode.OFFSET_OUT_OF_RANGE))  # NoOffsetForPartitionException
                pos.ready = False

    def commit(self, now: int, callback: CommitCallback, offsets: dict[TopicPartition, int] | None = None,
               sync: bool = True) -> list:
        """commitSync (sync: retried until it succeeds or fails for good) or commitAsync.
        Without offsets: the positions after everything poll has returned."""
        if self.group is None:
            raise ValueError("commit needs a group.id")
        fx = Effects()
        self.group.commit(dict(self.consumed) if offsets is None else offsets, callback, sync, now, fx)
        return fx.items

    def auto_commit(self, now: int, fx: Effects, force: bool = False) -> None:
        """enable.auto.commit: at poll, every auto.commit.interval.ms, commit the positions of
        the records earlier polls returned (asynchronously); and before a rebalance."""
        if not self.config.enable_auto_commit or self.group is None or not self.consumed:
            return
        if force or now >= self._next_auto_commit:
            self._next_auto_commit = now + self.config.auto_commit_interval_ms
            self.group.commit(dict(self.consumed), self.on_auto_commit, False, now, fx)

    def on_auto_commit(self, error: ErrorCode, offsets: dict[TopicPartition, int]) -> None:
        """Replaced by the simulator to record auto commits in the history."""

    def close(self, now: int) -> list:
        fx = Effects()
        self.auto_commit(now, fx, force=True)
        if self.group is not None:
            self.group.leave(now, fx)
        return fx.items

    def rewind(self, now: int) -> list:
        """Back to the group's committed offsets for every assigned partition (after an
        aborted transaction, as a Kafka EOS application seeks to them)."""
        fx = Effects()
        if self.group is None or not self.assignment:
            return fx.items
        self.buffer = []
        for tp in self.assignment:
            self.assignment[tp] = FetchPosition(ready=False)
            self.consumed.pop(tp, None)
        self.group.fetch_committed(sorted(self.assignment), now, fx)
        return fx.items

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.assignment[tp] = FetchPosition(offset)
        self.buffer = [(t, r) for t, r in self.buffer if t != tp]

    def position(self, tp: TopicPartition) -> int | None:
        return self.assignment[tp].offset

    def poll(self, now: int) -> tuple[list[tuple[TopicPartition, Record]], list]:
        """Records fetched so far (at most max.poll.records); starts fetches as needed.
        With a group: first the group's work (join, sync, revoke) and the auto commit of
        what earlier polls returned, as Kafka's poll does."""
        fx = Effects()
        if self.group is not None:
            self.auto_commit(now, fx)
            self.group.poll(now, fx)
        self._fetch_all(now, fx)
        out, self.buffer = self.buffer[: self.config.max_poll_records], self.buffer[self.config.max_poll_records :]
        for tp, r in out:
            self.consumed[tp] = max(self.consumed.get(tp, 0), r.offset + 1)
        return out, fx.items

    # -- requests -------------------------------------------------------------------------

    def _request_metadata(self, now: int, fx: Effects) -> None:
        if any(kind == "metadata" for kind, _, _ in self._requests.values()):
            return
        corr = self._next_corr()
        node = self._next_bootstrap()
        self._requests[corr] = ("metadata", None, 0)
        # Remembered like a fetch's, so a dead broker's refusal fails it at once and the next
        # poll asks another one (it used to wait request.timeout.ms: found by `verify`).
        self._request_node[corr] = node
        topics: tuple[str, ...] | None = tuple(sorted({tp.topic for tp in self.assignment}))
        if self.group is not None and self.group.subscribed:
            topics = None if self.group.pattern is not None else tuple(sorted(set(topics) | set(self.group.topics)))
        fx.send(node, m.MetadataRequest(corr, topics))
        fx.timer(("timeout", corr), now + self.config.request_timeout_ms)

    def _fetch_all(self, now: int, fx: Effects) -> None:
        for tp in sorted(self.assignment):
            pos = self.assignment[tp]
            if pos.inflight is not None or pos.retry_at > now or not pos.ready:
                continue
            leader, epoch = self.leaders.get(tp, (m.NO_LEADER, -1))
            if leader == m.NO_LEADER:
                self._request_metadata(now, fx)
                continue
            corr = self._next_corr()
            if pos.offset is None:
                ts = m.EARLIEST_TIMESTAMP if self.config.auto_offset_reset == "earliest" else m.LATEST_TIMESTAMP
                msg: object = m.ListOffsetsRequest(corr, tp, ts, epoch, self.isolation)
                self._requests[corr] = ("list", tp, -1)
            else:
                msg = m.FetchRequest(corr, tp, m.CONSUMER_REPLICA_ID, pos.offset, epoch,
                                     self.config.max_partition_fetch_bytes, self.config.fetch_max_wait_ms,
                                     self.config.fetch_min_bytes, isolation_level=self.isolation)
                self._requests[corr] = ("fetch", tp, pos.offset)
            pos.inflight = corr
            self._request_node[corr] = m.broker_node(leader)
            fx.send(m.broker_node(leader), msg)
            fx.timer(("timeout", corr), now + self.config.request_timeout_ms + self.config.fetch_max_wait_ms)

    # -- responses ------------------------------------------------------------------------

    def handle(self, src: str, msg: object, now: int) -> list:
        fx = Effects()
        if not isinstance(msg, m.Disconnected):
            self._heard_from(src)
        handler = self.route(type(msg))
        if handler is not None:  # anything else is an answer nobody waits for any more
            handler(src, msg, now, fx)
        return fx.items

    @handles(m.Disconnected)
    def _on_disconnected(self, src: str, msg: m.Disconnected, now: int, fx: Effects) -> None:
        self._gave_up_on(msg.node)
        for corr in sorted(c for c, node in self._request_node.items() if node == msg.node):
            fx.items += self.on_timer(("timeout", corr), now)  # will never be answered: fail it now

    @handles(m.MetadataResponse, m.ListOffsetsResponse, m.FetchResponse, *GroupMembership.routes)
    def _on_response(self, src: str, msg, now: int, fx: Effects) -> None:
        corr = msg.correlation_id
        self._request_node.pop(corr, None)
        if self.group is not None and corr in self.group.requests:
            self.group.handle(corr, msg, now, fx)
            return
        req = self._requests.pop(corr, None)
        if req is None:
            return
        kind, tp, offset = req
        if isinstance(msg, m.MetadataResponse):
            counts: dict[str, int] = {}
            for pm in msg.partitions:
                self.leaders[pm.tp] = (pm.leader, pm.leader_epoch)
                counts[pm.tp.topic] = max(counts.get(pm.tp.topic, 0), pm.tp.partition + 1)
            known = {} if self._wants_all() else dict(self.partition_counts)
            self.partition_counts = {t: n for t, n in {**known, **counts}.items() if t not in msg.unknown_topics}
            if msg.unknown_topics:
                # A topic it asked for is not there (yet): ask again after retry.backoff.ms, as
                # Kafka's Metadata.handleMetadataResponse requests an update for a topic whose
                # error is an InvalidMetadataException (UNKNOWN_TOPIC_OR_PARTITION is one) -
                # not only after metadata.max.age.ms, by when a run is long over.
                fx.timer(("metadata-retry",), now + self.config.retry_backoff_ms)
            if self.group is not None:
                self.group.on_metadata()
            return
        pos = self.assignment.get(tp)
        if pos is None or pos.inflight != msg.correlation_id:
            return
        pos.inflight = None
        if msg.error != ErrorCode.NONE:
            self._on_error(tp, pos, msg.error, now, fx)
        elif isinstance(msg, m.ListOffsetsResponse):
            pos.offset = msg.offset
        elif isinstance(msg, m.FetchResponse) and offset == pos.offset:
            self._take_records(tp, pos, msg.records, msg.aborted)

    def _take_records(self, tp: TopicPartition, pos: FetchPosition, data: bytes,
                      aborted: tuple[tuple[int, int], ...] = ()) -> None:
        at = 0
        batches = []
        while at < len(data):
            try:
                batch = decode_batch(data, at)
            except CorruptRecordError:
                self.errors.append((tp, ErrorCode.CORRUPT_MESSAGE))
                break
            at += batch.header.size
            batches.append(batch)
        for batch in visible_batches(batches, aborted):
            self.buffer += [(tp, r) for r in batch.records if r.offset >= pos.offset]
        if batches:
            pos.offset = max(pos.offset, batches[-1].header.next_offset)

    def _on_error(self, tp: TopicPartition, pos: FetchPosition, error: ErrorCode, now: int, fx: Effects) -> None:
        if error == ErrorCode.OFFSET_OUT_OF_RANGE:
            if self.config.auto_offset_reset == "none":
                self.errors.append((tp, error))
            pos.offset = None  # reset by auto.offset.reset on the next fetch
        else:
            self.leaders.pop(tp, None)
            self._request_metadata(now, fx)
        pos.retry_at = now + self.config.retry_backoff_ms

    def _wants_all(self) -> bool:
        return self.group is not None and self.group.pattern is not None

    def on_timer(self, key: tuple, now: int) -> list:
        fx = Effects()
        self.route(key[0])(key, now, fx)
        return fx.items

    @handles("heartbeat")
    def _heartbeat_due(self, key: tuple, now: int, fx: Effects) -> None:
        if self.group is not None:
            self.group.heartbeat(now, fx)

    @handles("find-coordinator")
    def _find_retry(self, key: tuple, now: int, fx: Effects) -> None:
        if self.group is not None:
            self.group.retry_find(now, fx)

    @handles("metadata-refresh")
    def _metadata_refresh(self, key: tuple, now: int, fx: Effects) -> None:
        self._request_metadata(now, fx)
        fx.timer(key, now + self.config.metadata_max_age_ms)

    @handles("metadata-retry")
    def _metadata_retry(self, key: tuple, now: int, fx: Effects) -> None:
        self._request_metadata(now, fx)

    @handles("timeout")
    def _request_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        self._gave_up_on(self._request_node.pop(key[1], None))
        if self.group is not None and key[1] in self.group.requests:
            self.group.timeout(key[1], now, fx)
            return
        req = self._requests.pop(key[1], None)
        if req is not None and req[0] == "metadata":
            # Unanswered: ask again (another broker) after retry.backoff.ms, as Kafka's
            # NetworkClient does while an update is still wanted - not at metadata.max.age.ms.
            fx.timer(("metadata-retry",), now + self.config.retry_backoff_ms)
        if req is not None and req[1] is not None:
            pos = self.assignment.get(req[1])
            if pos is not None and pos.inflight == key[1]:
                pos.inflight = None
                self._on_error(req[1], pos, ErrorCode.NETWORK_EXCEPTION, now, fx)
