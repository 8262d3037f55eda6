"""Trace validation: every step the implementation takes, replayed in the model.

The simulator calls `TraceValidator.on_step(node)` after each atomic step of a process
(one message handled or one timer fired). The validator abstracts the replica that
broker holds for one partition onto the model's `Replica`, compares it with the copy it
kept from the previous step, splits the difference into the model's actions in the
order one step can perform them (learn a new leader/epoch, truncate, append, move the
HW, change the ISR) and checks each against the model: its enabling condition, and the
state the model says it leads to. A step the model does not allow is a conformance
failure, reported with the replica before and after.

Two liberties, both because one implementation step sees its peers' state as it was
when a message was sent rather than as it is now: a leader may set its HW anywhere
up to the model's bound (it knows its followers' positions from their last fetch), and
a follower checks what it copies against everything any leader ever wrote at that
offset, and its truncation against the leader's state when it last led that epoch.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kafkaproof.impl.protocol.messages import NO_LEADER, TopicPartition, broker_node
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.conformance import log_entries
from kafkaproof.model.replication import NONE, Model, Replica, assign, truncate


@dataclass
class StepFailure:
    at: int
    node: str
    action: str
    reason: str
    before: Replica | None
    after: Replica | None

    def __str__(self) -> str:
        said = f"t={self.at} {self.node}: {self.action} is not a step the model allows: {self.reason}"
        if self.before is None:  # (a controller step: no replica to show)
            return said
        return f"{said}\n    before: {describe_replica(self.before)}\n    after:  {describe_replica(self.after)}"


def describe_replica(rep: Replica) -> str:
    log = " ".join(f"{v}@e{e}" for v, e in rep.log[-6:]) or "-"
    more = f"... {len(rep.log) - 6} more, " if len(rep.log) > 6 else ""
    return (f"log [{more}{log}] ({len(rep.log)} records) hw {rep.hw} epoch {rep.epoch} leader {rep.leader}"
            f" isr {list(rep.isr)} epochs {list(rep.epochs)}")


@dataclass
class _Tracked:
    log_id: int  # identity of the Log object: a restart opens a new one
    rep: Replica


@dataclass
class TraceValidator:
    cluster: Cluster
    tp: TopicPartition
    variant: str = "kip320"
    failures: list[StepFailure] = field(default_factory=list)
    steps: int = 0  # replica changes validated
    actions: dict[str, int] = field(default_factory=dict)  # how often each model action was seen

    def __post_init__(self) -> None:
        self.model = Model(self.variant)
        self.replicas: dict[int, _Tracked] = {}
        self.elected: dict[int, int] = {}  # every committed leader epoch -> its leader
        self.written: dict[int, set[tuple[str | None, int]]] = {}  # offset -> (value, epoch) any leader wrote
        self.led: dict[tuple[int, int], Replica] = {}  # (leader, epoch) -> its replica when it last led it
        self.max_hw: dict[int, int] = {}  # the highest HW each replica ever had as leader
        self.unreconciled: set[int] = set()  # followers of a new epoch that have not yet truncated
        self.committed = None  # the partition's last committed state (kip966: elections, ELR)
        self.cluster.observers.append(self.on_step)
        self.cluster.store.observers.append(self.on_commit)

    # -- abstraction ----------------------------------------------------------------------

    def _abstract(self, p, known: _Tracked | None) -> Replica:
        log = p.log
        prior = known.rep.log if known is not None and known.log_id == id(log) else ()
        end = log.log_end_offset
        if len(prior) > end:
            entries = prior[:end]
        elif len(prior) == end:
            entries = prior
        else:
            entries = prior + log_entries(log, len(prior))
        leader = p.leader if p.leader != NO_LEADER else NONE
        return Replica(entries, p.hw, p.leader_epoch, leader, tuple(p.isr), tuple(log.epochs.entries))

    # -- the hook -------------------------------------------------------------------------

    def on_commit(self, metadata) -> None:
        st = metadata.partitions.get(self.tp)
        if st is not None:
            self.elected.setdefault(st.leader_epoch, st.leader)
            if self.model.elr:
                self._controller_step(self.committed, st)
            self.committed = st

    def _controller_step(self, before, st) -> None:
        """KIP-966's controller rules (kip_966_properties.tla, ValidControllerIsrAndElr and
        the election order): the ELR apart from the ISR and empty once the ISR has
        min.insync.replicas; a new leader from the ISR, else from the ELR, else the last known
        leader once both are empty (this validator runs with unclean election off)."""
        min_isr = self.cluster.config.min_insync_replicas
        where = broker_node(st.leader) if st.leader != NO_LEADER else "controller"
        if set(st.elr) & set(st.isr) or (st.elr and len(st.isr) >= min_isr):
            self.failures.append(StepFailure(self.cluster.now, where, "ELR", f"ISR {list(st.isr)} and ELR"
                                             f" {list(st.elr)} with min.insync.replicas={min_isr}", None, None))
        if before is None or st.leader_epoch <= before.leader_epoch or st.leader == NO_LEADER:
            return
        if st.leader in before.isr:
            self._seen("ControllerElectLeader")
        elif st.leader in before.elr:
            self._seen("ControllerElectFromElr")
        elif not before.isr and not before.elr and before.last_known_elr == (st.leader,):
            self._seen("ControllerElectLastKnownLeader")
        elif before.leader != NO_LEADER or before.isr or before.elr or before.last_known_elr:  # (not the first)
            self.failures.append(StepFailure(self.cluster.now, where, "ControllerElectLeader",
                                             f"elected {st.leader}, in neither ISR {list(before.isr)} nor ELR"
                                             f" {list(before.elr)}, nor the last known leader", None, None))

    def on_step(self, node: str) -> None:
        if not node.startswith("broker-"):
            return
        b = int(node.split("-")[1])
        p = self.cluster.broker(b).partitions.get(self.tp)
        if p is None:
            return
        known = self.replicas.get(b)
        after = self._abstract(p, known)
        if known is None or known.log_id != id(p.log):
            self._restarted(b, known, after)
        elif after != known.rep:
            self.steps += 1
            self._validate(b, known.rep, after)
        self.replicas[b] = _Tracked(id(p.log), after)
        if after.leader == b:
            self.led[(b, after.epoch)] = after
            self.max_hw[b] = max(self.max_hw.get(b, 0), after.hw)

    def _fail(self, b: int, action: str, reason: str, before: Replica, after: Replica) -> None:
        self.failures.append(StepFailure(self.cluster.now, broker_node(b), action, reason, before, after))

    def _seen(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1

    def _restarted(self, b: int, known: _Tracked | None, after: Replica) -> None:
        """Restart: the log comes back from disk (a crash keeps the page cache), the HW
        from a checkpoint that may be stale, the role forgotten. The step that reopened
        the partition may already have learnt a leader: validate that part as a step
        from the restarted replica."""
        if known is None:
            return
        self._seen("Restart")
        if after.log != known.rep.log[: len(after.log)]:
            self._fail(b, "Restart", "the recovered log is not a prefix of the log before the crash",
                       known.rep, after)
        restarted = Model.restarted(known.rep, after.hw)
        if after != restarted:
            self.steps += 1
            self._validate(b, restarted, after)

    # -- one step, split into model actions -------------------------------------------------

    def _validate(self, b: int, before: Replica, after: Replica) -> None:
        cur = before
        if (after.epoch, after.leader) != (before.epoch, before.leader):
            cur = self._learn(b, cur, after)
        common = _common_prefix(cur.log, after.log)
        if common < len(cur.log):
            cur = self._truncate(b, cur, after, common)
        if len(after.log) > len(cur.log):
            cur = self._append(b, cur, after)
        if after.isr != cur.isr:
            cur = self._change_isr(b, cur, after)  # before the HW: a shrink lets it move at once
        if after.hw != cur.hw:
            cur = self._move_hw(b, cur, after)
        if after.epochs != cur.epochs:
            self._fail(b, "epoch cache", f"the model expects {list(cur.epochs)}", before, after)

    def _learn(self, b: int, cur: Replica, after: Replica) -> Replica:
        if after.leader == NONE and after.epoch == cur.epoch:
            self._seen("StopReplica")
            return cur._replace(leader=NONE)
        action = "BecomeLeader" if after.leader == b else "BecomeFollower"
        self._seen(action)
        if after.epoch < cur.epoch:
            self._fail(b, action, f"epoch went back from {cur.epoch} to {after.epoch}", cur, after)
        if self.elected.get(after.epoch) != after.leader:
            self._fail(b, action, f"the controller never elected {after.leader} for epoch {after.epoch}", cur, after)
        cur = cur._replace(epoch=after.epoch, leader=after.leader, isr=after.isr)
        if after.leader != b and self.variant != "legacy-hw":
            self.unreconciled.add(b)  # the model truncates as it learns; the broker asks first
        if after.leader == b:
            cur = cur._replace(epochs=assign(cur.epochs, after.epoch, len(cur.log)))
        return cur

    def _truncate(self, b: int, cur: Replica, after: Replica, common: int) -> Replica:
        to = len(after.log)
        if common < to:
            self._fail(b, "Truncate", f"offsets {common}..{to - 1} were rewritten, not truncated", cur, after)
        allowed = self._truncation_points(b, cur)
        action = "BecomeFollowerAndTruncate" if cur.leader != b else "LeaderTruncate"
        self._seen(action)
        if to not in allowed:
            self._fail(b, action, f"truncated to {to}; the model allows only {sorted(allowed)}", cur, after)
        return truncate(cur, to)

    def _truncation_points(self, b: int, cur: Replica) -> set[int]:
        if self.variant == "legacy-hw":
            return {cur.hw} if cur.leader != b else set()  # whenever it follows, even nobody
        if cur.leader in (NONE, b):
            return set()  # neither a leader nor a replica without a leader truncates
        lead = self.led.get((cur.leader, cur.epoch))
        points = {len(lead.log)} if lead is not None else set()  # out of range: cut to the leader's end
        if lead is None:
            return points | {len(truncate(cur, cur.hw).log)}  # never saw it lead: no epochs to compare
        return points | {len(rep.log) for rep in self.model.reconcile_steps(cur, lead)}

    def _append(self, b: int, cur: Replica, after: Replica) -> Replica:
        new = after.log[len(cur.log):]
        if cur.leader == b:
            self._seen("LeaderWrite")
            if any(e != cur.epoch for _, e in new):
                self._fail(b, "LeaderWrite", f"a leader of epoch {cur.epoch} wrote {list(new)}", cur, after)
            for o, entry in enumerate(new, len(cur.log)):
                self.written.setdefault(o, set()).add(entry)
            return cur._replace(log=after.log)
        self._seen("FollowerReplicate")
        if cur.leader == NONE:
            self._fail(b, "FollowerReplicate", "a replica that follows nobody fetched", cur, after)
        cut = self._unreconciled_cut(b, cur)
        if cut is not None:
            self._fail(b, "FollowerReplicate", f"fetched before truncating: the model cuts to {cut} first", cur, after)
        epochs = cur.epochs
        for o, entry in enumerate(new, len(cur.log)):
            if entry not in self.written.get(o, ()):
                self._fail(b, "FollowerReplicate", f"offset {o} holds {entry}, which no leader wrote there", cur, after)
                break
            if self.model.fencing and entry[1] > cur.epoch:
                self._fail(b, "FollowerReplicate", f"copied {entry} from an epoch after its own {cur.epoch}", cur, after)
                break
            epochs = assign(epochs, entry[1], o)
        return cur._replace(log=after.log, epochs=epochs)

    def _unreconciled_cut(self, f: int, rep: Replica) -> int | None:
        """Where the model would still cut follower `f`, if it has not yet truncated as
        its new epoch requires (None when it has: then it stays reconciled)."""
        lead = self.led.get((rep.leader, rep.epoch))
        if f not in self.unreconciled or lead is None:
            return None
        self.unreconciled.discard(f)
        end = len(self.model.reconcile(rep, lead).log)
        return end if end != len(rep.log) else None

    def _move_hw(self, b: int, cur: Replica, after: Replica) -> Replica:
        hw = after.hw
        if hw < cur.hw:
            self._fail(b, "HW", f"the HW went back from {cur.hw} to {hw} without a truncation", cur, after)
        elif cur.leader == b:
            self._seen("LeaderIncHighWatermark")
            bound, short = self._hw_bound(b, cur)
            min_isr = self.cluster.broker(b).partitions[self.tp].min_insync_replicas
            if self.model.elr and len(cur.isr) < min_isr:
                self._fail(b, "LeaderIncHighWatermark", f"HW moved with ISR {list(cur.isr)} below"
                           f" min.insync.replicas={min_isr} (KIP-966's strict min ISR)", cur, after)
            if hw > bound:
                self._fail(b, "LeaderIncHighWatermark",
                           f"HW {hw} but ISR member {short} holds only {bound} records", cur, after)
        else:
            self._seen("FollowerIncHighWatermark")
            bound = min(len(cur.log), self.max_hw.get(cur.leader, 0))
            if hw > bound:
                self._fail(b, "FollowerReplicate", f"HW {hw} above min(log end, leader's HW) = {bound}", cur, after)
        return cur._replace(hw=hw)

    def _hw_bound(self, b: int, cur: Replica) -> tuple[int, int]:
        """The model's LeaderIncHighWatermark bound: the smallest log end over the ISR."""
        bound, short = len(cur.log), b
        for r in cur.isr:
            tracked = self.replicas.get(r)
            if r != b and tracked is not None and len(tracked.rep.log) < bound:
                bound, short = len(tracked.rep.log), r
        return bound, short

    def _change_isr(self, b: int, cur: Replica, after: Replica) -> Replica:
        if cur.leader == b:
            for r in sorted(set(after.isr) - set(cur.isr)):
                self._seen("LeaderExpandIsr")
                tracked = self.replicas.get(r)
                size = len(tracked.rep.log) if tracked else 0
                cut = self._unreconciled_cut(r, tracked.rep) if tracked else None
                if cut is not None:
                    # The model admits only a follower that fetches in this epoch, which it
                    # can do only once it has truncated.
                    self._fail(b, "LeaderExpandIsr", f"added {r} before it truncated to {cut}", cur, after)
                if size < cur.hw:
                    self._fail(b, "LeaderExpandIsr", f"added {r}, which holds {size} records, below the HW {cur.hw}",
                               cur, after)
            if set(cur.isr) - set(after.isr):
                self._seen("LeaderShrinkIsr")
        return cur._replace(isr=after.isr)  # a follower's copy of the ISR is informational


def _common_prefix(a: tuple, b: tuple) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    return next(i for i in range(n) if a[i] != b[i])
