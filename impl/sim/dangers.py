"""Danger events: the moments at which a guarantee can break, counted in every run.

A run that never shrank the ISR to its leader says nothing about unclean election, so a
"held" comes with the dangers its runs reached (Antithesis calls these "sometimes"
assertions). Each danger is defined once here, with the guarantees it can break and how
to reach it; `DangerWatch` counts them in a simulated run. It only reads - the cluster's
state, the messages it delivers, the `Note`s processes emit - so saved runs replay
unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.properties.availability import GRACE_MS, PATIENCE_MS

JUDGED_DOWN_MS = GRACE_MS + PATIENCE_MS
REPLICATION = ("durability", "read-your-writes", "monotonic-reads", "exactly-once", "partition-order")
RESENDS = ("exactly-once", "partition-order")


@dataclass(frozen=True)
class Danger:
    name: str
    what: str
    guarantees: tuple[str, ...]
    reach: str  # how a run gets there (the hint when none did)
    # A fixed schedule that gets a run there (impl/sim/faults.apply_fixed steps), given the
    # configuration's replica.lag.time.max.ms and broker.session.timeout.ms; steered runs
    # use it where verify has no breaking schedule (kafkaproof/guided.py). None: the danger
    # is the loss itself, or comes only with a setting a schedule cannot give.
    schedule: Callable[[int, int], tuple] | None = None
    # Whether a configuration can meet it at all (None: any): steering spends no runs on
    # one it cannot.
    possible: Callable[[BrokerConfig], bool] | None = None


def _isolate_leader_from_followers(lag_ms: int, session_ms: int) -> tuple:
    """Both followers' replication cut for longer than the lag time, while writes go on."""
    return ((3000, "cut", 1), (3000, "cut", 2), (3000 + lag_ms + 4000, "heal", -1))


def _last_member_powered_off(lag_ms: int, session_ms: int) -> tuple:
    """Both followers cut off past the lag time, so the ISR shrinks to leader 0; then 0
    loses power and comes back, and the followers with it (KIP-966's hazard)."""
    shrunk = 3000 + lag_ms + 4000
    return ((3000, "cut", 1), (3000, "cut", 2), (shrunk, "power", 0), (shrunk + 1000, "restart", 0),
            (shrunk + 1000, "heal", -1))


def _stale_follower_served(lag_ms: int, session_ms: int) -> tuple:
    """A follower that learns no leader change (the controller's requests to it lost, its
    heartbeats still arriving) keeps fetching from the first leader, which is deposed
    and elected again in between: replica 1 lacks what 0 takes before crashing, leads
    epoch 1 when 0 comes back (a re-registration moves leadership at once), then crashes
    and comes back cut off again, so 0 leads epoch 2 - and counts replica 2's fetches from
    its epoch-0 log, which holds other records at those offsets. Crashing 0 once more
    leaves replica 2 the only ISR member. All within replica.lag.time.max.ms, before an
    ISR drops it."""
    back = min(1000, session_ms // 4)  # restarted before the session ends: a re-registration
    # Epoch 1 lasts long enough for its leader to take more than 0 took alone (its
    # producers are held back by acks=all), so 0's stale tail lies under new records.
    e1 = 5000 + back
    e2 = e1 + 7000 + back
    return ((3000, "cut", 1), (3000, "cut", 2, "control"), (5000, "crash", 0), (5000, "heal", 1),
            (e1, "restart", 0), (e1 + 7000, "crash", 1), (e2, "restart", 1),
            (e2, "cut", 1),  # and it stays out of the ISR
            (e2 + 4000, "crash", 0), (e2 + 4000, "heal", -1), (e2 + 4000 + back, "restart", 0))


def _leader_down(kind: str, at_least_ms: int = 0) -> Callable[[int, int], tuple]:
    """The leader's process (crash) or machine (power) down until the controller has
    fenced it and moved leadership (broker.session.timeout.ms), and `at_least_ms`, then back."""
    return lambda lag_ms, session_ms: ((3000, kind, 0), (3000 + max(session_ms + 4000, at_least_ms), "restart", 0))


DANGERS = {d.name: d for d in (
    Danger("isr-shrank-to-leader", "the ISR shrank to the leader alone", REPLICATION,
           "cut a follower off for longer than replica.lag.time.max.ms (--faults cut)", _isolate_leader_from_followers),
    Danger("out-of-sync-elected", "a replica outside the ISR was elected (unclean election)", REPLICATION,
           "crash the last ISR member while an out-of-sync replica lives"),
    Danger("new-leader-missing-acked", "a new leader's log ended below an acknowledged offset", REPLICATION,
           "elect a replica that lacks acknowledged records"),
    Danger("follower-truncated-committed", "a replica truncated records below the high watermark", REPLICATION,
           "change leaders while a follower's high watermark lags (crash, cut)"),
    Danger("stale-epoch-served", "a leader served a fetch or epoch query from a replica of another leader"
           " epoch (KIP-320's fencing refuses these)", REPLICATION,
           "a follower that misses leader changes (--faults partition: a one-way cut of the controller's requests)"
           " while leaders change (crash)", _stale_follower_served,
           lambda broker: broker.legacy_no_fetch_epoch_fencing),
    Danger("power-lost-unflushed", "an ISR member lost power with unflushed acknowledged records", REPLICATION,
           "--faults power, without log.flush.interval.messages=1", _leader_down("power")),
    Danger("last-isr-member-power-lost", "the last ISR member lost power with unflushed acknowledged records"
           " (KIP-966's hazard: before eligible leader replicas it is elected again)", REPLICATION,
           "--faults power,partition: cut the followers off past replica.lag.time.max.ms, then power the leader off",
           _last_member_powered_off),
    Danger("produce-retried-after-lost-answer", "a produce was retried after its answer was lost", RESENDS,
           "lose produce answers (--faults drop, crash)", lambda lag, session: ((3000, "drop", -1), (8000, "drop", -1))),
    Danger("produce-attempt-failed", "a produce attempt failed with a retriable error (leader change,"
           " timeout, lost connection)", ("delivery",), "change leaders or lose produce answers (--faults crash, drop)",
           # (long enough to be a judged stretch of broker-down-judged too)
           _leader_down("crash", at_least_ms=JUDGED_DOWN_MS + 2000)),
    Danger("broker-down-judged", "one broker down past the time the cluster takes to route around it, nothing"
           " else wrong: the stretch availability is judged on (properties/availability.py; counted at the run's"
           " end)", ("availability",), f"keep one broker down for {JUDGED_DOWN_MS // 1000} s or more (a fixed"
           " schedule: steered runs take produce-attempt-failed's)"),
    Danger("request-overtaken", "a produce request arrived after a later one", RESENDS,
           "--faults reorder or late", lambda lag, session: ((3000, "reorder", -1), (8000, "heal", -1))),
    Danger("member-crashed-mid-commit", "a group member crashed between processing and committing",
           ("consumer-no-loss", "consumer-no-duplicates", "committed-offsets"), "--faults member",
           lambda lag, session: ((3000, "member", -1, "processed"),)),
    Danger("rebalance-during-async-processing", "a rebalance happened while a worker still processed records",
           ("consumer-no-loss", "group-exclusivity"), "--commit-strategy auto-async with --faults member"),
    Danger("txn-marker-late", "a transaction marker arrived after later messages", (
           "transactions", "exactly-once-processing", "no-aborted-reads"), "--faults reorder or late",
           lambda lag, session: ((3000, "late", -1, 0.2), (23000, "heal", -1))),
    Danger("zombie-fenced", "a zombie producer was fenced by its epoch", (
           "transactions", "exactly-once-processing"), "--faults zombie", lambda lag, session: ((3000, "zombie", -1),)),
    Danger("producer-crashed-mid-transaction", "a transactional producer's process died with a transaction"
           " open", ("transactions", "exactly-once-processing"), "--faults producer-crash",
           lambda lag, session: ((3000, "producer-crash", -1),)),
    Danger("member-fenced", "a group member that still owned partitions was told the group had moved on"
           " without it (a zombie member, fenced by the generation)", (
           "group-exclusivity", "committed-offsets", "consumer-no-duplicates", "exactly-once-processing"),
           "pause a group member past its session.timeout.ms (--faults member-pause)", lambda lag, session: ((3000, "member-pause", -1),)),
)}

PRODUCER_FENCED = frozenset({ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH})
MEMBER_FENCED = frozenset({ErrorCode.ILLEGAL_GENERATION, ErrorCode.UNKNOWN_MEMBER_ID})


def table_markdown() -> str:
    """The README's danger table."""
    rows = ["| danger | the moment | can break | how a run reaches it |", "|---|---|---|---|"]
    for d in DANGERS.values():
        can = "the partition's guarantees" if d.guarantees == REPLICATION else ", ".join(d.guarantees)
        rows.append(f"| `{d.name}` | {d.what} | {can} | {d.reach}{' (steered runs: a schedule of its own)' if d.schedule else ''} |")
    return "\n".join(rows)


def relevant(guarantee: str) -> list[str]:
    return [d.name for d in DANGERS.values() if guarantee in d.guarantees]


class DangerWatch:
    """Counts danger events in one simulated run (the cluster calls the hooks)."""

    def __init__(self, cluster) -> None:
        self.c = cluster
        self.counts: Counter[str] = Counter()
        self._committed: dict[TopicPartition, int] = {}  # tp -> highest HW a leader reached
        self._leo: dict[tuple, int] = {}  # (node, incarnation, tp) -> log end last seen
        self._acked: dict[TopicPartition, int] = {}  # tp -> highest acknowledged offset
        self._scanned = 0  # history ops read so far (for _acked)

    def add(self, event: str) -> None:
        assert event in DANGERS, event
        self.counts[event] += 1

    # -- hooks ------------------------------------------------------------------------------

    def noted(self, note: m.Note) -> None:
        self.add(note.event)

    def delivered(self, src: str, dst: str, msg: object) -> None:
        error = getattr(msg, "error", None)
        if error in PRODUCER_FENCED:
            self.add("zombie-fenced")
        elif error in MEMBER_FENCED:
            # To a consumer that still believes it owns partitions; or to a producer whose
            # TxnOffsetCommit named a generation the group had left behind (KIP-447).
            membership = getattr(self.c.procs.get(dst), "group", None)
            if membership is None or membership.owned:
                self.add("member-fenced")
        elif isinstance(msg, (m.FetchRequest, m.OffsetsForLeaderEpochRequest)) and msg.replica_id >= 0:
            self._replica_request(src, dst, msg)

    def _replica_request(self, src: str, dst: str, req) -> None:
        """A follower's request its leader will serve although they are in different leader
        epochs: only a request without its epoch (before KIP-320) gets that far."""
        if req.current_leader_epoch >= 0 or src in self.c.down or src not in self.c.procs:
            return
        lead, follow = self.c.procs[dst].partitions.get(req.tp), self.c.procs[src].partitions.get(req.tp)
        if lead is not None and follow is not None and lead.is_leader and lead.leader_epoch != follow.leader_epoch:
            self.add("stale-epoch-served")

    def out_of_order(self, msg: object) -> None:
        """A copy of `msg` will arrive after messages sent later on its link."""
        if isinstance(msg, m.ProduceRequest):
            self.add("request-overtaken")
        elif isinstance(msg, m.WriteTxnMarkersRequest):
            self.add("txn-marker-late")

    def partition_changed(self, tp: TopicPartition, before: tuple[int, int, tuple, tuple], st) -> None:
        """A committed change of a partition's (leader, epoch, ISR, ELR) from `before` to
        `st` (the cluster's record of partition states calls it). An eligible leader
        replica (KIP-966) elected is a clean election, not an out-of-sync one."""
        if len(st.replicas) > 1 and st.isr == (st.leader,) and before[2] != st.isr:
            self.add("isr-shrank-to-leader")
        if st.leader != before[0] and st.leader != m.NO_LEADER:
            if st.leader not in before[2] and st.leader not in before[3]:
                self.add("out-of-sync-elected")
            leo = self._log_end(st.leader, tp)
            if leo is not None and leo <= self._acked_offset(tp):
                self.add("new-leader-missing-acked")

    def power_loss(self, broker: int) -> None:
        """Before the broker's unflushed bytes go."""
        node = m.broker_node(broker)
        if node not in self.c.procs:
            return
        committed = self.c.store.read().partitions
        found = set()
        for tp, p in sorted(self.c.broker(broker).partitions.items()):
            if (not tp.topic.startswith("__") and tp in committed and broker in committed[tp].isr
                    and p.log.recovery_point <= self._acked_offset(tp) and p.log.unflushed_messages > 0):
                found.add("power-lost-unflushed")
                if committed[tp].isr == (broker,):
                    found.add("last-isr-member-power-lost")
        for name in sorted(found):
            self.add(name)

    def __call__(self, node: str, partitions: list) -> None:
        """After a broker's step, with its partitions whose role, HW or log end changed (a
        partition watcher: impl/sim/cluster.py): a replica dropping records below what a
        leader had already committed."""
        if node in self.c.down:
            return
        inc = self.c.incarnation.get(node, 0)
        for p in partitions:
            tp = p.tp
            if tp.topic.startswith("__"):
                continue
            leo = p.log.log_end_offset
            if p.is_leader and p.hw > self._committed.get(tp, 0):
                self._committed[tp] = p.hw
            key = (node, inc, tp)
            before = self._leo.get(key)
            self._leo[key] = leo
            if before is not None and leo < before and leo < self._committed.get(tp, 0):
                self.add("follower-truncated-committed")

    # -- reading the cluster ----------------------------------------------------------------

    def _log_end(self, broker: int, tp: TopicPartition) -> int | None:
        node = m.broker_node(broker)
        if node in self.c.down or node not in self.c.procs:
            return None
        p = self.c.broker(broker).partitions.get(tp)
        return None if p is None else p.log.log_end_offset

    def _acked_offset(self, tp: TopicPartition) -> int:
        ops = self.c.history.ops
        for op in ops[self._scanned:]:
            if op.f == "send" and op.type == "ok" and op.offset is not None and op.topic is not None:
                key = TopicPartition(op.topic, op.partition)
                self._acked[key] = max(self._acked.get(key, -1), op.offset)
        self._scanned = len(ops)
        return self._acked.get(tp, -1)
