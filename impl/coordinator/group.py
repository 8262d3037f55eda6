"""The group coordinator: consumer group membership, rebalances and committed offsets.

It lives in every broker and serves the groups whose `__consumer_offsets` partition
that broker leads (the partition is `abs(group.id.hashCode()) % offsets.topic.num.partitions`,
as Kafka computes it). Everything it must remember is written to that partition as
records - the offset commits and each generation's group metadata - and only answered
once the partition's high watermark covers them, so a new leader (coordinator
failover) rebuilds every group by reading the log (Kafka's GroupMetadataManager).

Group states (Kafka's): Empty -> PreparingRebalance (members rejoin; those that do not
within the rebalance timeout are dropped) -> CompletingRebalance (the leader member
computes the assignment and sends it with SyncGroup) -> Stable. A member whose
heartbeats stop for session.timeout.ms is removed and the others rebalance. Every
request names a generation: one from an older generation is ILLEGAL_GENERATION, from
an unknown member UNKNOWN_MEMBER_ID, during a rebalance REBALANCE_IN_PROGRESS.

Not modelled: static membership (group.instance.id), offset expiry. (The offsets topic
is compacted, impl/storage/cleaner.py; the loader keeps the last record per key, and
DeleteGroups / OffsetDelete write tombstones.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafkaproof.impl.coordinator.ports import CoordinatorConfig, CoordinatorHost, StatePartition
from kafkaproof.impl.coordinator.state_log import Done, StateLog, partition_for
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import Effects, TopicPartition
from kafkaproof.impl.protocol.process import Dispatcher, handles
from kafkaproof.impl.protocol.records import ControlRecordType

OFFSETS_TOPIC = "__consumer_offsets"
EMPTY, PREPARING, COMPLETING, STABLE = "Empty", "PreparingRebalance", "CompletingRebalance", "Stable"


def offsets_partition(group_id: str, config: CoordinatorConfig) -> TopicPartition:
    """The `__consumer_offsets` partition that holds a group (and its transactional commits)."""
    return TopicPartition(OFFSETS_TOPIC, partition_for(group_id, config.offsets_topic_partitions))


@dataclass
class Member:
    member_id: str
    client: str  # the node its requests come from
    session_timeout_ms: int
    rebalance_timeout_ms: int
    protocols: tuple[str, ...]
    subscription: tuple[str, ...]
    owned: tuple[TopicPartition, ...] = ()
    assignment: tuple[TopicPartition, ...] = ()
    join: int | None = None  # correlation id of a JoinGroup waiting for the rebalance
    sync: int | None = None  # correlation id of a SyncGroup waiting for the leader
    # Wire clients' opaque bytes (Kafka's MemberMetadata keeps them so): the metadata per
    # protocol, and the leader's assignment for this member.
    metadata: tuple[tuple[str, bytes], ...] = ()
    raw_assignment: bytes = b""

    def record(self) -> list:
        return [self.member_id, self.client, self.session_timeout_ms, self.rebalance_timeout_ms,
                list(self.protocols), list(self.subscription), [list(tp) for tp in self.assignment],
                [[name, data.hex()] for name, data in self.metadata], self.raw_assignment.hex()]

    @classmethod
    def from_record(cls, r: list) -> Member:
        raw = (tuple((name, bytes.fromhex(data)) for name, data in r[7]), bytes.fromhex(r[8])) if len(r) > 8 else ((), b"")
        return cls(r[0], r[1], r[2], r[3], tuple(r[4]), tuple(r[5]),
                   assignment=tuple(TopicPartition(t, p) for t, p in r[6]), metadata=raw[0], raw_assignment=raw[1])


@dataclass
class Group:
    group_id: str
    tp: TopicPartition  # its __consumer_offsets partition
    state: str = EMPTY
    generation: int = 0
    protocol: str = ""
    leader: str = ""
    members: dict[str, Member] = field(default_factory=dict)
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    details: dict[TopicPartition, tuple[int, str]] = field(default_factory=dict)  # (leader epoch, metadata)
    join_deadline: int = 0


class GroupCoordinator(Dispatcher):
    def __init__(self, broker_id: int, config: CoordinatorConfig,
                 host: CoordinatorHost) -> None:
        self.broker_id = broker_id
        self.config = config
        self.log = StateLog(host.complete_delayed, config.offsets_commit_timeout_ms, "group-write-timeout",
                            self._next_id)
        self.groups: dict[str, Group] = {}
        # Offsets committed inside a transaction (TxnOffsetCommit), by (group, producer id):
        # they count once the transaction's COMMIT marker is written, and vanish on ABORT.
        self.txn_offsets: dict[tuple[str, int], dict[TopicPartition, int]] = {}
        self._seq = 0  # numbers new member ids and pending writes

    def _next_id(self) -> int:
        self._seq += 1
        return self._seq

    # -- which groups are ours -------------------------------------------------------------

    def tp_for(self, group_id: str) -> TopicPartition:
        return offsets_partition(group_id, self.config)

    def _group(self, group_id: str) -> tuple[Group | None, ErrorCode]:
        """The group if we coordinate it (creating it empty on first use)."""
        tp = self.tp_for(group_id)
        if tp not in self.log.leading:
            return None, ErrorCode.NOT_COORDINATOR
        g = self.groups.get(group_id)
        if g is None:
            g = self.groups[group_id] = Group(group_id, tp)
        return g, ErrorCode.NONE

    def become_leader(self, p: StatePartition, now: int, fx: Effects) -> None:
        """Load every group of this offsets partition from its log (coordinator failover)."""
        self.log.leading[p.tp] = p
        self._forget(p.tp)
        for key, value, header in StateLog.entries(p):
            if header.is_control:
                commit = p.log.marker(header)[0] == ControlRecordType.COMMIT
                self._end_txn_offsets(p.tp, header.producer_id, commit)
            elif header.is_transactional:
                tp = TopicPartition(key[2], key[3])
                self.txn_offsets.setdefault((key[1], header.producer_id), {})[tp] = (
                    value["offset"], (value.get("leader_epoch", -1), value.get("metadata", "")))
                self.groups.get(key[1]) or self.groups.setdefault(key[1], Group(key[1], p.tp))
            else:
                self._replay(p.tp, key, value)
        for g in self.groups.values():
            if g.tp == p.tp:
                for member in g.members.values():
                    fx.timer(("group-session", g.group_id, member.member_id), now + member.session_timeout_ms)

    def _replay(self, tp: TopicPartition, key: list, value) -> None:
        g = self.groups.get(key[1]) or self.groups.setdefault(key[1], Group(key[1], tp))
        if value is None:  # a tombstone: DeleteGroups, OffsetDelete
            if key[0] == "offset":
                _drop_offset(g, TopicPartition(key[2], key[3]))
            else:
                del self.groups[key[1]]
        elif key[0] == "offset":
            tp = TopicPartition(key[2], key[3])
            g.offsets[tp] = value["offset"]
            g.details[tp] = (value.get("leader_epoch", -1), value.get("metadata", ""))
        elif key[0] == "group":
            g.generation, g.protocol, g.leader = value["generation"], value["protocol"], value["leader"]
            g.members = {r[0]: Member.from_record(r) for r in value["members"]}
            g.state = STABLE if g.members else EMPTY

    def _forget(self, tp: TopicPartition) -> list[Group]:
        gone = [g for g in self.groups.values() if g.tp == tp]
        for g in gone:
            del self.groups[g.group_id]
        for key in [k for k in self.txn_offsets if self.tp_for(k[0]) == tp]:
            del self.txn_offsets[key]
        return gone

    def resign(self, tp: TopicPartition, fx: Effects) -> None:
        """No longer the leader of `tp`: its groups go to the next coordinator."""
        if tp not in self.log.leading:
            return
        for g in self._forget(tp):
            for member in g.members.values():
                self._answer_waiting(member, ErrorCode.NOT_COORDINATOR, fx)
        self.log.resign(tp, fx)  # after the groups are gone: their pending writes see that

    # -- writing to __consumer_offsets -------------------------------------------------------

    def _write(self, g: Group, entries: list[tuple[list, object]], now: int, fx: Effects, done: Done) -> None:
        self.log.write(g.tp, entries, now, fx, done)

    def on_hw(self, p: StatePartition, now: int, fx: Effects) -> None:
        self.log.on_hw(p, fx)

    def _end_txn_offsets(self, tp: TopicPartition, producer_id: int, commit: bool) -> None:
        for key in sorted(k for k in self.txn_offsets if k[1] == producer_id and self.tp_for(k[0]) == tp):
            offsets = self.txn_offsets.pop(key)
            g = self.groups.get(key[0])
            if commit and g is not None:
                g.offsets.update({tp: o for tp, (o, _) in offsets.items()})
                g.details.update({tp: detail for tp, (_, detail) in offsets.items()})

    def on_txn_marker(self, tp: TopicPartition, producer_id: int, commit: bool) -> None:
        """A transaction marker on one of our offsets partitions is committed (Kafka's
        GroupMetadataManager.handleTxnCompletion)."""
        if tp in self.log.leading:
            self._end_txn_offsets(tp, producer_id, commit)

    # -- requests ------------------------------------------------------------------------------

    @handles(m.JoinGroupRequest)
    def join(self, src: str, req: m.JoinGroupRequest, now: int, fx: Effects) -> None:
        def fail(error: ErrorCode) -> None:
            fx.send(src, m.JoinGroupResponse(req.correlation_id, error, member_id=req.member_id))

        g, error = self._group(req.group_id)
        if g is None:
            return fail(error)
        if not self.config.group_min_session_timeout_ms <= req.session_timeout_ms <= \
                self.config.group_max_session_timeout_ms:
            return fail(ErrorCode.INVALID_SESSION_TIMEOUT)
        if g.members and not self._candidates(list(g.members.values()), req.protocols):
            return fail(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if req.member_id and req.member_id not in g.members:
            return fail(ErrorCode.UNKNOWN_MEMBER_ID)
        member_id = req.member_id
        if not member_id:
            member_id = f"{src}-{self.broker_id}.{self._next_id()}"
        member = g.members.get(member_id)
        if member is None:
            member = g.members[member_id] = Member(member_id, src, req.session_timeout_ms,
                                                   req.rebalance_timeout_ms, req.protocols, req.subscription)
        member.client, member.protocols, member.subscription = src, req.protocols, req.subscription
        member.session_timeout_ms, member.rebalance_timeout_ms = req.session_timeout_ms, req.rebalance_timeout_ms
        member.owned, member.join, member.metadata = req.owned, req.correlation_id, req.metadata
        fx.timer(("group-session", g.group_id, member_id), now + member.session_timeout_ms)
        if g.state != PREPARING:
            self._prepare_rebalance(g, now, fx)
        self._maybe_complete_join(g, now, fx)

    def _prepare_rebalance(self, g: Group, now: int, fx: Effects) -> None:
        if g.state == COMPLETING:
            for member in g.members.values():  # their SyncGroup will not be answered now
                if member.sync is not None:
                    fx.send(member.client, m.SyncGroupResponse(member.sync, ErrorCode.REBALANCE_IN_PROGRESS))
                    member.sync = None
        first = g.state == EMPTY
        g.state = PREPARING
        timeout = max((mb.rebalance_timeout_ms for mb in g.members.values()), default=0)
        # A new group waits group.initial.rebalance.delay.ms for more members (Kafka's
        # InitialDelayedJoin), so a starting application does not rebalance once per member.
        delay = min(self.config.group_initial_rebalance_delay_ms, timeout) if first else timeout
        g.join_deadline = now + delay
        fx.timer(("group-join", g.group_id), g.join_deadline)

    def _maybe_complete_join(self, g: Group, now: int, fx: Effects, expired: bool = False) -> None:
        if g.state != PREPARING:
            return
        waiting_initial = now < g.join_deadline and g.generation == 0 and not expired
        if not expired and (waiting_initial or any(mb.join is None for mb in g.members.values())):
            return
        for mb in [mb for mb in g.members.values() if mb.join is None]:
            del g.members[mb.member_id]  # did not rejoin within the rebalance timeout
        g.generation += 1
        if not g.members:
            g.state, g.protocol, g.leader = EMPTY, "", ""
            self._write(g, [(["group", g.group_id], self._group_record(g))], now, fx, lambda e, fx: None)
            return
        members = sorted(g.members.values(), key=lambda mb: mb.member_id)
        g.protocol = self._select_protocol(members)
        if g.leader not in g.members:
            g.leader = members[0].member_id
        g.state = COMPLETING
        everyone = tuple((mb.member_id, mb.subscription, mb.owned) for mb in members)
        raw = tuple((mb.member_id, dict(mb.metadata)[g.protocol]) for mb in members if g.protocol in dict(mb.metadata))
        for mb in members:
            leader = mb.member_id == g.leader
            fx.send(mb.client, m.JoinGroupResponse(mb.join, ErrorCode.NONE, g.generation, g.protocol, g.leader,
                                                   mb.member_id, everyone if leader else (), raw if leader else ()))
            mb.join = None
            fx.timer(("group-session", g.group_id, mb.member_id), now + mb.session_timeout_ms)

    @staticmethod
    def _candidates(members: list[Member], protocols: tuple[str, ...] = ()) -> list[str]:
        sets = [set(mb.protocols) for mb in members] + ([set(protocols)] if protocols else [])
        return sorted(set.intersection(*sets)) if sets else []

    def _select_protocol(self, members: list[Member]) -> str:
        """Kafka's vote: each member votes for its most preferred protocol that all support."""
        candidates = set(self._candidates(members))
        votes: dict[str, int] = {}
        for mb in members:
            choice = next(p for p in mb.protocols if p in candidates)
            votes[choice] = votes.get(choice, 0) + 1
        return max(sorted(votes), key=lambda p: votes[p])

    def _group_record(self, g: Group) -> dict:
        return {"generation": g.generation, "protocol": g.protocol, "leader": g.leader,
                "members": [mb.record() for mb in sorted(g.members.values(), key=lambda mb: mb.member_id)]}

    def _check_member(self, g: Group, member_id: str, generation: int) -> ErrorCode:
        if member_id not in g.members:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if generation != g.generation:
            return ErrorCode.ILLEGAL_GENERATION
        return ErrorCode.NONE

    @handles(m.SyncGroupRequest)
    def sync(self, src: str, req: m.SyncGroupRequest, now: int, fx: Effects) -> None:
        def answer(error: ErrorCode, member: Member | None = None) -> None:
            fx.send(src, m.SyncGroupResponse(req.correlation_id, error, *(
                (member.assignment, member.raw_assignment) if member is not None else ())))

        g, error = self._group(req.group_id)
        if g is None:
            return answer(error)
        error = self._check_member(g, req.member_id, req.generation)
        if error != ErrorCode.NONE:
            return answer(error)
        if g.state == PREPARING:
            return answer(ErrorCode.REBALANCE_IN_PROGRESS)
        member = g.members[req.member_id]
        if g.state == STABLE:
            return answer(ErrorCode.NONE, member)
        member.client, member.sync = src, req.correlation_id
        if req.member_id != g.leader:
            return
        assignments, raw = dict(req.assignments), dict(req.raw_assignments)
        generation = g.generation
        for mb in g.members.values():
            mb.assignment = tuple(assignments.get(mb.member_id, ()))
            mb.raw_assignment = raw.get(mb.member_id, b"")

        def stored(error: ErrorCode, fx: Effects) -> None:
            if g.generation != generation or g.state != COMPLETING or g.group_id not in self.groups:
                return  # a newer rebalance (or a resignation) answered the waiting members
            if error != ErrorCode.NONE:
                for mb in g.members.values():
                    self._answer_waiting(mb, error, fx)
                return
            g.state = STABLE
            for mb in g.members.values():
                if mb.sync is not None:
                    fx.send(mb.client, m.SyncGroupResponse(mb.sync, ErrorCode.NONE, mb.assignment, mb.raw_assignment))
                    mb.sync = None

        self._write(g, [(["group", g.group_id], self._group_record(g))], now, fx, stored)

    @handles(m.HeartbeatRequest)
    def heartbeat(self, src: str, req: m.HeartbeatRequest, now: int, fx: Effects) -> None:
        g, error = self._group(req.group_id)
        if g is not None:
            error = self._check_member(g, req.member_id, req.generation)
            if error == ErrorCode.NONE:
                member = g.members[req.member_id]
                fx.timer(("group-session", g.group_id, member.member_id), now + member.session_timeout_ms)
                if g.state == PREPARING:
                    error = ErrorCode.REBALANCE_IN_PROGRESS
        fx.send(src, m.HeartbeatResponse(req.correlation_id, error))

    @handles(m.LeaveGroupRequest)
    def leave(self, src: str, req: m.LeaveGroupRequest, now: int, fx: Effects) -> None:
        g, error = self._group(req.group_id)
        if g is not None:
            error = ErrorCode.NONE if req.member_id in g.members else ErrorCode.UNKNOWN_MEMBER_ID
            if error == ErrorCode.NONE:
                self._remove(g, req.member_id, now, fx)
        fx.send(src, m.LeaveGroupResponse(req.correlation_id, error))

    def _remove(self, g: Group, member_id: str, now: int, fx: Effects) -> None:
        member = g.members.pop(member_id)
        self._answer_waiting(member, ErrorCode.UNKNOWN_MEMBER_ID, fx)
        if g.state in (STABLE, COMPLETING):
            self._prepare_rebalance(g, now, fx)
        if g.state == PREPARING:
            self._maybe_complete_join(g, now, fx, expired=not g.members)

    @staticmethod
    def _answer_waiting(member: Member, error: ErrorCode, fx: Effects) -> None:
        if member.join is not None:
            fx.send(member.client, m.JoinGroupResponse(member.join, error, member_id=member.member_id))
            member.join = None
        if member.sync is not None:
            fx.send(member.client, m.SyncGroupResponse(member.sync, error))
            member.sync = None

    @handles(m.OffsetCommitRequest)
    def commit(self, src: str, req: m.OffsetCommitRequest, now: int, fx: Effects) -> None:
        def answer(error: ErrorCode, fx: Effects = fx) -> None:
            fx.send(src, m.OffsetCommitResponse(req.correlation_id, error))

        g, error = self._group(req.group_id)
        if g is None:
            return answer(error)
        if req.generation >= 0 or g.members:
            # A member's commit must come from the current generation (a standalone
            # consumer, generation -1, may commit only to a group without members).
            error = self._check_member(g, req.member_id, req.generation)
            if error == ErrorCode.NONE and g.state == COMPLETING:
                error = ErrorCode.REBALANCE_IN_PROGRESS
            if error != ErrorCode.NONE:
                return answer(error)
        offsets = dict(req.offsets)
        details = {tp: (epoch, metadata) for tp, epoch, metadata in req.details}

        def stored(error: ErrorCode, fx: Effects) -> None:
            if error == ErrorCode.NONE and g.group_id in self.groups:
                g.offsets.update(offsets)
                g.details.update({tp: details.get(tp, (-1, "")) for tp in offsets})
            answer(error, fx)

        self._write(g, [(["offset", g.group_id, tp.topic, tp.partition], _offset_record(o, details.get(tp)))
                        for tp, o in req.offsets], now, fx, stored)

    @handles(m.TxnOffsetCommitRequest)
    def txn_commit(self, src: str, req: m.TxnOffsetCommitRequest, now: int, fx: Effects) -> None:
        """Offsets as part of a transaction: written with the producer's id and epoch (a
        fenced producer's write fails), counted only when its COMMIT marker arrives."""
        def answer(error: ErrorCode, fx: Effects = fx) -> None:
            fx.send(src, m.TxnOffsetCommitResponse(req.correlation_id, error))

        g, error = self._group(req.group_id)
        if g is None:
            return answer(error)
        if req.generation >= 0:  # KIP-447: a zombie of an older generation is fenced here
            error = self._check_member(g, req.member_id, req.generation)
            if error != ErrorCode.NONE:
                return answer(error)
        details = {tp: (epoch, metadata) for tp, epoch, metadata in req.details}
        offsets = {tp: (o, details.get(tp, (-1, ""))) for tp, o in req.offsets}

        def stored(error: ErrorCode, fx: Effects) -> None:
            if error == ErrorCode.NONE and g.group_id in self.groups:
                self.txn_offsets.setdefault((g.group_id, req.producer_id), {}).update(offsets)
            answer(error, fx)

        self.log.write(g.tp, [(["offset", g.group_id, tp.topic, tp.partition], _offset_record(o, details.get(tp)))
                              for tp, o in req.offsets], now, fx, stored, producer=(req.producer_id, req.producer_epoch))

    @handles(m.OffsetFetchRequest)
    def fetch_offsets(self, src: str, req: m.OffsetFetchRequest, now: int, fx: Effects) -> None:
        g, error = self._group(req.group_id)
        tps = req.tps or (tuple(sorted(g.offsets)) if g is not None else ())  # none named: all the group has
        offsets = tuple((tp, g.offsets.get(tp, -1)) for tp in tps) if g is not None else ()
        if g is not None and req.require_stable and any(
                k[0] == g.group_id and tp in pending for k, pending in self.txn_offsets.items() for tp in tps):
            # KIP-447: a transaction may still commit newer offsets; ask again later.
            error, offsets = ErrorCode.UNSTABLE_OFFSET_COMMIT, ()
        details = tuple((tp, *g.details.get(tp, (-1, ""))) for tp, _ in offsets) if g is not None else ()
        fx.send(src, m.OffsetFetchResponse(req.correlation_id, error, offsets, details))

    # -- admin: DescribeGroups, ListGroups -------------------------------------------------------

    def _known(self, g: Group | None) -> bool:
        """A group Kafka would know: it had a generation or holds offsets (not one only
        looked up, which Kafka answers as Dead)."""
        return g is not None and (g.generation > 0 or bool(g.members) or bool(g.offsets))

    @handles(m.DescribeGroupRequest)
    def describe(self, src: str, req: m.DescribeGroupRequest, now: int, fx: Effects) -> None:
        if self.tp_for(req.group_id) not in self.log.leading:
            fx.send(src, m.DescribeGroupResponse(req.correlation_id, ErrorCode.NOT_COORDINATOR))
            return
        g = self.groups.get(req.group_id)
        if not self._known(g):
            fx.send(src, m.DescribeGroupResponse(req.correlation_id, ErrorCode.NONE))
            return
        stable = g.state == STABLE  # only a stable group shows metadata and assignments (GroupMetadata.summary)
        members = tuple(m.GroupMemberSummary(
            mb.member_id, mb.client, dict(mb.metadata).get(g.protocol, b"") if stable else b"",
            mb.raw_assignment if stable else b"", mb.subscription if stable else (), mb.assignment if stable else ())
            for mb in sorted(g.members.values(), key=lambda mb: mb.member_id))
        fx.send(src, m.DescribeGroupResponse(req.correlation_id, ErrorCode.NONE, g.state, "consumer",
                                             g.protocol if stable else "", members))

    @handles(m.ListGroupsRequest)
    def list_groups(self, src: str, req: m.ListGroupsRequest, now: int, fx: Effects) -> None:
        groups = tuple((g.group_id, "consumer", g.state) for g in sorted(self.groups.values(), key=lambda g: g.group_id)
                       if self._known(g) and g.tp in self.log.leading and (not req.states or g.state in req.states))
        fx.send(src, m.ListGroupsResponse(req.correlation_id, ErrorCode.NONE, groups))

    # -- admin: DeleteGroups, OffsetDelete ----------------------------------------------------

    @handles(m.DeleteGroupRequest)
    def delete_group(self, src: str, req: m.DeleteGroupRequest, now: int, fx: Effects) -> None:
        """An empty group's offsets and metadata are tombstoned (GroupCoordinator.handleDeleteGroups):
        a group with members is NON_EMPTY_GROUP, an unknown one GROUP_ID_NOT_FOUND."""
        def answer(error: ErrorCode, fx: Effects = fx) -> None:
            fx.send(src, m.DeleteGroupResponse(req.correlation_id, error))

        if self.tp_for(req.group_id) not in self.log.leading:
            return answer(ErrorCode.NOT_COORDINATOR)
        g = self.groups.get(req.group_id)
        if not self._known(g):
            return answer(ErrorCode.GROUP_ID_NOT_FOUND)
        if g.members:
            return answer(ErrorCode.NON_EMPTY_GROUP)

        def stored(error: ErrorCode, fx: Effects) -> None:
            if error == ErrorCode.NONE and self.groups.get(g.group_id) is g and not g.members:
                del self.groups[g.group_id]
            answer(error, fx)

        tombstones = [(["offset", g.group_id, tp.topic, tp.partition], None) for tp in sorted(g.offsets)]
        self._write(g, tombstones + [(["group", g.group_id], None)], now, fx, stored)

    @handles(m.OffsetDeleteRequest)
    def delete_offsets(self, src: str, req: m.OffsetDeleteRequest, now: int, fx: Effects) -> None:
        """Tombstone a group's committed offsets, except on topics its live members
        subscribe to (GROUP_SUBSCRIBED_TO_TOPIC, as GroupCoordinator.handleDeleteOffsets)."""
        def answer(error: ErrorCode, errors=(), fx: Effects = fx) -> None:
            fx.send(src, m.OffsetDeleteResponse(req.correlation_id, error, tuple(errors)))

        if self.tp_for(req.group_id) not in self.log.leading:
            return answer(ErrorCode.NOT_COORDINATOR)
        g = self.groups.get(req.group_id)
        if not self._known(g):
            return answer(ErrorCode.GROUP_ID_NOT_FOUND)
        subscribed = {t for mb in g.members.values() for t in mb.subscription}
        errors = [(tp, ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC if tp.topic in subscribed else ErrorCode.NONE)
                  for tp in req.tps]
        gone = sorted(tp for tp, error in errors if error == ErrorCode.NONE and tp in g.offsets)

        def stored(error: ErrorCode, fx: Effects) -> None:
            if error == ErrorCode.NONE:
                for tp in gone:
                    _drop_offset(g, tp)
            answer(error, errors, fx)

        if not gone:
            return answer(ErrorCode.NONE, errors)
        self._write(g, [(["offset", g.group_id, tp.topic, tp.partition], None) for tp in gone], now, fx, stored)

    # -- timers --------------------------------------------------------------------------------

    @handles("group-join")
    def _join_deadline(self, key: tuple, now: int, fx: Effects) -> None:
        g = self.groups.get(key[1])
        if g is not None and g.state == PREPARING and now >= g.join_deadline:
            self._maybe_complete_join(g, now, fx, expired=True)

    @handles("group-session")
    def _session_expired(self, key: tuple, now: int, fx: Effects) -> None:
        g = self.groups.get(key[1])
        if g is not None and key[2] in g.members and g.members[key[2]].join is None:
            self._remove(g, key[2], now, fx)  # no heartbeat for session.timeout.ms

    @handles("group-write-timeout")
    def _write_timed_out(self, key: tuple, now: int, fx: Effects) -> None:
        self.log.timed_out(key[1], fx)


def _offset_record(offset: int, detail: tuple[int, str] | None) -> dict:
    """An offset commit's record value: with the client's leader epoch and metadata
    string where it gave them (Kafka's OffsetAndMetadata)."""
    return {"offset": offset, **({"leader_epoch": detail[0], "metadata": detail[1]} if detail is not None else {})}


def _drop_offset(g: Group, tp: TopicPartition) -> None:
    g.offsets.pop(tp, None)
    g.details.pop(tp, None)
