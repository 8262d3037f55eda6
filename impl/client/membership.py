"""A consumer's membership of its group (Kafka's ConsumerCoordinator), sans-IO.

Find the coordinator, JoinGroup, (as leader) run the assignor, SyncGroup, heartbeat;
rejoin when the coordinator says a rebalance is in progress, when the subscription
matches a new topic, when a subscribed topic grows (the leader notices), and after a
cooperative rebalance that revoked something. Commits go to the coordinator with the
member's generation, so a member that was dropped cannot overwrite its successor's.

Eager assignors (range, roundrobin, sticky) revoke every partition before rejoining:
the whole group stops consuming until the rebalance ends (the seed's stop-the-world).
cooperative-sticky revokes only the partitions that move, after the rebalance, and
keeps consuming the rest throughout (KIP-429).

The application hears about it through a listener with Kafka's three callbacks:
on_partitions_revoked (it may still commit), on_partitions_assigned, and
on_partitions_lost (it is no longer a member: a commit would fail).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from kafkaproof.impl.client.assignors import Subscription, assign
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.process import Dispatcher, handles

if TYPE_CHECKING:
    from kafkaproof.impl.client.consumer import Consumer

RETRIABLE = {ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
             ErrorCode.REQUEST_TIMED_OUT, ErrorCode.NETWORK_EXCEPTION}
COOPERATIVE = "cooperative-sticky"
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


# A JoinGroup's own timeout: the rebalance timeout (max.poll.interval.ms) and this much
# (Kafka's AbstractCoordinator.JOIN_GROUP_TIMEOUT_LAPSE).
JOIN_LAPSE_MS = 5000

class RebalanceListener(Protocol):
    def on_partitions_revoked(self, tps: list[TopicPartition]) -> None: ...
    def on_partitions_assigned(self, tps: list[TopicPartition]) -> None: ...
    def on_partitions_lost(self, tps: list[TopicPartition]) -> None: ...


CommitCallback = Callable[[ErrorCode, dict[TopicPartition, int]], None]


class GroupMembership(Dispatcher):
    def __init__(self, consumer: Consumer, group_id: str) -> None:
        self.consumer = consumer
        self.config = consumer.config
        self.group_id = group_id
        self.topics: tuple[str, ...] = ()
        self.pattern: re.Pattern | None = None
        self.listener: RebalanceListener | None = None
        self.coordinator: str | None = None
        self.state = "unjoined"  # unjoined | joining | syncing | stable
        self.member_id = ""
        self.generation = -1
        self.protocol = ""
        self.leader = ""
        self.owned: tuple[TopicPartition, ...] = ()
        self.rejoin_needed = False
        self.lost_pending = False  # dropped from the group: owned partitions are lost
        self.snapshot: dict[str, int] = {}  # partition counts the last assignment saw (leader)
        self.joined_topics: tuple[str, ...] = ()  # the subscription sent with the last JoinGroup
        self.last_poll = 0
        self.fatal: ErrorCode | None = None
        self.requests: dict[int, tuple[str, object]] = {}  # corr -> (kind, context)
        self.queued_commits: list[tuple[dict[TopicPartition, int], CommitCallback, bool]] = []

    # -- the application's side ---------------------------------------------------------------

    def subscribe(self, topics: list[str] | None, pattern: str | None, listener: RebalanceListener | None) -> None:
        self.pattern = re.compile(pattern) if pattern is not None else None
        self.topics = tuple(sorted(topics or ()))
        self.listener = listener
        self.rejoin_needed = True

    def subscribed_topics(self) -> tuple[str, ...]:
        if self.pattern is None:
            return self.topics
        return tuple(sorted(t for t in self.consumer.partition_counts
                            if t not in INTERNAL_TOPICS and self.pattern.fullmatch(t)))

    @property
    def subscribed(self) -> bool:
        return bool(self.topics) or self.pattern is not None

    def poll(self, now: int, fx: Effects) -> None:
        """Called by every poll: the membership work Kafka's poll does before fetching."""
        self.last_poll = now
        if self.fatal is not None or not self.subscribed:
            return
        if self.coordinator is None:
            return self._find_coordinator(now, fx)
        if self.lost_pending:
            self._lose_all()
        if self.state in ("unjoined", "stable") and (self.rejoin_needed or self.state == "unjoined"):
            self._join(now, fx)

    def commit(self, offsets: dict[TopicPartition, int], callback: CommitCallback, retry: bool, now: int,
               fx: Effects) -> None:
        """commitSync (retry: until success or a fatal error) or commitAsync (no retry)."""
        if self.coordinator is None:
            self.queued_commits.append((offsets, callback, retry))
            self._find_coordinator(now, fx)
            return
        corr = self.consumer._next_corr()
        generation, member = (self.generation, self.member_id) if self.subscribed else (-1, "")
        self._send(corr, ("commit", (offsets, callback, retry)), m.OffsetCommitRequest(
            corr, self.group_id, generation, member, tuple(sorted(offsets.items()))), now, fx)

    def leave(self, now: int, fx: Effects) -> None:
        if self.member_id and self.coordinator is not None:
            corr = self.consumer._next_corr()
            self._send(corr, ("leave", None), m.LeaveGroupRequest(corr, self.group_id, self.member_id), now, fx)
        self._reset_generation(lost=False)

    # -- requests ---------------------------------------------------------------------------------

    def _send(self, corr: int, what: tuple[str, object], msg: object, now: int, fx: Effects,
              dst: str | None = None) -> None:
        self.requests[corr] = what
        fx.send(dst or self.coordinator, msg)
        fx.timer(("timeout", corr), now + self.config.request_timeout_ms)
        self.consumer._request_node[corr] = dst or self.coordinator

    def _find_coordinator(self, now: int, fx: Effects) -> None:
        if any(kind == "find" for kind, _ in self.requests.values()):
            return
        corr = self.consumer._next_corr()
        self._send(corr, ("find", None), m.FindCoordinatorRequest(corr, self.group_id), now, fx,
                   dst=self.consumer._next_bootstrap())

    def _join(self, now: int, fx: Effects) -> None:
        if self.lost_pending:
            self._lose_all()
        cooperative = self.protocol == COOPERATIVE or self.config.assignment_strategy[0] == COOPERATIVE
        if self.owned and not cooperative:
            self._revoke(list(self.owned), now, fx)  # eager: give everything back before rejoining
        self.rejoin_needed = False
        self.state = "joining"
        self.joined_topics = self.subscribed_topics()
        corr = self.consumer._next_corr()
        self._send(corr, ("join", None), m.JoinGroupRequest(
            corr, self.group_id, self.member_id, self.config.session_timeout_ms, self.config.max_poll_interval_ms,
            self.config.assignment_strategy, self.joined_topics, self.owned), now, fx)
        # The join waits up to the rebalance timeout at the coordinator.
        fx.timer(("timeout", corr), now + self.config.max_poll_interval_ms + JOIN_LAPSE_MS)

    def _sync(self, assignments: tuple, now: int, fx: Effects) -> None:
        self.state = "syncing"
        corr = self.consumer._next_corr()
        self._send(corr, ("sync", self.generation), m.SyncGroupRequest(
            corr, self.group_id, self.generation, self.member_id, assignments), now, fx)

    # -- partitions changing hands ------------------------------------------------------------------

    def _revoke(self, tps: list[TopicPartition], now: int, fx: Effects) -> None:
        if self.config.enable_auto_commit:
            self.consumer.auto_commit(now, fx, force=True)  # Kafka commits before revoking (onJoinPrepare)
        if self.listener is not None and tps:
            self.listener.on_partitions_revoked(sorted(tps))
        self.owned = tuple(tp for tp in self.owned if tp not in tps)
        self.consumer.set_assignment(list(self.owned), from_group=True)

    def _lose_all(self) -> None:
        self.lost_pending = False
        lost = list(self.owned)
        self.owned = ()
        self.consumer.set_assignment([], from_group=True)
        if self.listener is not None and lost:
            self.listener.on_partitions_lost(sorted(lost))

    def _reset_generation(self, lost: bool, forget_member: bool = True) -> None:
        self.generation = -1
        if forget_member:
            self.member_id = ""
        self.state = "unjoined"
        if lost and self.owned:
            self.lost_pending = True  # the application hears at its next poll

    # -- responses ----------------------------------------------------------------------------------

    def handle(self, corr: int, msg: object, now: int, fx: Effects) -> None:
        _kind, ctx = self.requests.pop(corr)
        self.route(type(msg))(ctx, msg, now, fx)

    def timeout(self, corr: int, now: int, fx: Effects) -> None:
        kind, ctx = self.requests.pop(corr)
        if kind == "find":
            fx.timer(("find-coordinator",), now + self.config.retry_backoff_ms)
        else:
            self.coordinator = None  # unanswered: look for the coordinator again
        if kind in ("join", "sync"):
            self.state = "unjoined" if self.generation < 0 else "stable"
            self.rejoin_needed = True
        elif kind == "commit":
            self._commit_failed(ctx, ErrorCode.REQUEST_TIMED_OUT, now, fx)

    def _coordinator_error(self, error: ErrorCode) -> bool:
        if error in (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE):
            self.coordinator = None
            return True
        return False

    def retry_find(self, now: int, fx: Effects) -> None:
        if self.coordinator is None:
            self._find_coordinator(now, fx)

    @handles(m.FindCoordinatorResponse)
    def _on_find(self, ctx, msg: m.FindCoordinatorResponse, now: int, fx: Effects) -> None:
        if msg.error != ErrorCode.NONE:
            # No coordinator yet (its partition has no leader): ask again soon, even if
            # the application is blocked in commitSync and does not poll.
            fx.timer(("find-coordinator",), now + self.config.retry_backoff_ms)
            return
        self.coordinator = m.broker_node(msg.node_id)
        queued, self.queued_commits = self.queued_commits, []
        for offsets, callback, retry in queued:
            self.commit(offsets, callback, retry, now, fx)

    @handles(m.JoinGroupResponse)
    def _on_join(self, ctx, msg: m.JoinGroupResponse, now: int, fx: Effects) -> None:
        if msg.error != ErrorCode.NONE:
            self.state = "unjoined" if self.generation < 0 else "stable"
            self.rejoin_needed = True
            if msg.error == ErrorCode.UNKNOWN_MEMBER_ID:
                self._reset_generation(lost=True)
            elif msg.error in (ErrorCode.INCONSISTENT_GROUP_PROTOCOL, ErrorCode.INVALID_SESSION_TIMEOUT):
                self.fatal = msg.error
            else:
                self._coordinator_error(msg.error)
            return
        self.member_id, self.generation, self.protocol, self.leader = (msg.member_id, msg.generation,
                                                                       msg.protocol, msg.leader)
        assignments: tuple = ()
        if msg.leader == msg.member_id:
            counts = self.consumer.partition_counts
            members = {mid: Subscription(topics, owned) for mid, topics, owned in msg.members}
            wanted = {t for _, topics, _ in msg.members for t in topics}
            self.snapshot = {t: counts[t] for t in sorted(wanted) if t in counts}
            result = assign(msg.protocol, members, self.snapshot)
            assignments = tuple((mid, tuple(tps)) for mid, tps in sorted(result.items()))
        self._sync(assignments, now, fx)

    @handles(m.SyncGroupResponse)
    def _on_sync(self, generation, msg: m.SyncGroupResponse, now: int, fx: Effects) -> None:
        if generation != self.generation:
            return
        if msg.error != ErrorCode.NONE:
            self.rejoin_needed = True
            if msg.error in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.ILLEGAL_GENERATION):
                self._reset_generation(lost=True, forget_member=msg.error == ErrorCode.UNKNOWN_MEMBER_ID)
            else:
                self._coordinator_error(msg.error)
                self.state = "unjoined"
            return
        self.state = "stable"
        new = set(msg.assignment)
        revoked = [tp for tp in self.owned if tp not in new]
        added = sorted(new - set(self.owned))
        if revoked:
            self._revoke(revoked, now, fx)
            self.rejoin_needed = True  # cooperative: the freed partitions move in a second rebalance
        self.owned = tuple(sorted(new))
        self.consumer.set_assignment(list(self.owned), from_group=True)
        if added:
            self.fetch_committed(added, now, fx)
        if self.listener is not None:
            self.listener.on_partitions_assigned(added)
        fx.timer(("heartbeat",), now + self.config.heartbeat_interval_ms)

    def fetch_committed(self, tps: list[TopicPartition], now: int, fx: Effects) -> None:
        corr = self.consumer._next_corr()
        self._send(corr, ("offsets", (self.generation, tuple(tps))),
                   m.OffsetFetchRequest(corr, self.group_id, tuple(tps),
                                        self.consumer.config.isolation_level == "read_committed"), now, fx)

    @handles(m.OffsetFetchResponse)
    def _on_offsets(self, ctx, msg: m.OffsetFetchResponse, now: int, fx: Effects) -> None:
        generation, tps = ctx
        if msg.error != ErrorCode.NONE:
            self._coordinator_error(msg.error)
            if self.coordinator is not None:
                self.fetch_committed(list(tps), now, fx)
            else:
                self.rejoin_needed = True  # the new coordinator's answer comes with the rejoin
            return
        self.consumer.committed_positions(dict(msg.offsets))

    def heartbeat(self, now: int, fx: Effects) -> None:
        if self.state == "stable" and self.coordinator is not None and self.generation >= 0:
            if now - self.last_poll > self.config.max_poll_interval_ms:
                # The application stopped polling: leave, so the group moves on without it
                # (Kafka's heartbeat thread does the same); its partitions are lost.
                self.leave(now, fx)
                self.lost_pending = bool(self.owned)
                return
            corr = self.consumer._next_corr()
            self._send(corr, ("heartbeat", self.generation), m.HeartbeatRequest(
                corr, self.group_id, self.generation, self.member_id), now, fx)
        fx.timer(("heartbeat",), now + self.config.heartbeat_interval_ms)

    @handles(m.HeartbeatResponse)
    def _on_heartbeat(self, generation, msg: m.HeartbeatResponse, now: int, fx: Effects) -> None:
        if generation != self.generation:
            return
        if msg.error == ErrorCode.REBALANCE_IN_PROGRESS:
            self.rejoin_needed = True
        elif msg.error in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.ILLEGAL_GENERATION):
            self._reset_generation(lost=True, forget_member=msg.error == ErrorCode.UNKNOWN_MEMBER_ID)
        else:
            self._coordinator_error(msg.error)

    @handles(m.LeaveGroupResponse)
    def _on_leave(self, ctx, msg: m.LeaveGroupResponse, now: int, fx: Effects) -> None:
        pass

    @handles(m.OffsetCommitResponse)
    def _on_commit(self, ctx, msg: m.OffsetCommitResponse, now: int, fx: Effects) -> None:
        offsets, callback, retry = ctx
        if msg.error == ErrorCode.NONE:
            callback(ErrorCode.NONE, offsets)
            return
        if msg.error in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.ILLEGAL_GENERATION):
            self._reset_generation(lost=True, forget_member=msg.error == ErrorCode.UNKNOWN_MEMBER_ID)
        elif msg.error == ErrorCode.REBALANCE_IN_PROGRESS:
            self.rejoin_needed = True
        self._coordinator_error(msg.error)
        self._commit_failed(ctx, msg.error, now, fx)

    def _commit_failed(self, ctx, error: ErrorCode, now: int, fx: Effects) -> None:
        offsets, callback, retry = ctx
        if retry and error in RETRIABLE:
            self.commit(offsets, callback, retry, now, fx)  # commitSync: until success or a fatal error
        else:
            callback(error, offsets)  # commitAsync, or CommitFailedException

    # -- metadata -----------------------------------------------------------------------------------

    def on_metadata(self) -> None:
        """New topics matching the pattern, or (for the leader) more partitions: rejoin."""
        if self.state != "stable" or not self.subscribed:
            return
        counts = self.consumer.partition_counts
        if self.subscribed_topics() != self.joined_topics:
            self.rejoin_needed = True
        if self.leader == self.member_id and any(counts.get(t, n) != n for t, n in self.snapshot.items()):
            self.rejoin_needed = True
