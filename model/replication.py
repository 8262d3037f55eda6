"""A small reference model of Kafka's replication protocol, explorable exhaustively.

Written in the spirit of the KafkaReplication TLA+ specification
(hachikuji/kafka-specification) and independently of `impl/` (it imports nothing
from it). Every protocol step is a named action with its enabling condition; the
protocol variants change only the steps that differ:

    legacy-hw  a follower truncates to its own high watermark (before KIP-101)
    kip101     leader epochs: truncate where the leader's answer for our latest epoch
               says, trusting it even when it answers for an older epoch
    kip279     KIP-279: truncate to the end of the epoch we *share* with the leader
    kip320     KIP-279 plus KIP-320: fetches and epoch queries carry the follower's
               leader epoch; a leader of another epoch refuses them (Kafka 3.x)
    kip966     KIP-320 plus KIP-966's eligible leader replicas (Kafka 4.1's default):
               the HW moves only with min.insync.replicas in the ISR; members that
               leave an ISR below it become eligible (ELR) and are elected when the
               ISR is empty; a replica that shut down uncleanly leaves both; with both
               empty the last known leader leads again (uncleanly)

State (all tuples, so states hash):
    replicas[r] = (log, hw, epoch, leader, isr, epochs)
        log     ((record id, leader epoch), ...)
        hw      the replica's high watermark (volatile: restarts reset it to a
                possibly stale checkpoint)
        epoch, leader, isr   what the replica last learnt from the controller
        epochs  its leader-epoch cache ((epoch, start offset), ...)
    quorum = (epoch, leader, isr, elr) the controller's committed state
    next_id                            records written so far
    committed = ((offset, record id), ...)  ghost: every write a leader acknowledged
    unclean_shutdowns                  ghost: restarts and power losses so far (Bounds.unclean_shutdowns)

Time, message loss, duplication and delay are not modelled one by one: any replica
may take any enabled step at any moment, or never, which covers them. A LeaderAndIsr
request arriving late is a replica learning the quorum state later.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

VARIANTS = ("legacy-hw", "kip101", "kip279", "kip320", "kip966")
NONE = -1


class Replica(NamedTuple):
    log: tuple[tuple[int, int], ...]
    hw: int
    epoch: int
    leader: int
    isr: tuple[int, ...]
    epochs: tuple[tuple[int, int], ...]


class State(NamedTuple):
    replicas: tuple[Replica, ...]
    q_epoch: int
    q_leader: int
    q_isr: tuple[int, ...]
    next_id: int
    committed: tuple[tuple[int, int], ...]
    q_elr: tuple[int, ...] = ()  # eligible leader replicas (kip966; always empty before it)
    unclean_shutdowns: int = 0
    # (both last, with defaults: a state of a variant without them is built as before)


@dataclass(frozen=True)
class Bounds:
    replicas: int = 3
    records: int = 2
    max_epoch: int = 3
    unclean: bool = False  # unclean.leader.election.enable
    power_loss: bool = False  # may a replica lose its unflushed log tail (Kafka never fsyncs by default)
    min_isr: int = 1  # min.insync.replicas: acks=all is acknowledged only with this many in the ISR
    # At most this many unclean shutdowns in a run - restarts (a crash: no clean shutdown
    # marker) and power losses - None: any number. KIP-966 keeps acknowledged writes through
    # min.insync.replicas - 1 of them, not more (kip_966_properties.tla); a crash counts
    # because the ELR forgets a replica back from one, and Kafka 4 may then elect the last
    # known leader, which may be the one that lost power.
    unclean_shutdowns: int | None = None


# --- the leader-epoch cache (the same rules as Kafka's LeaderEpochFileCache) ----------------


def assign(epochs, epoch: int, start: int):
    if epochs and epochs[-1][0] >= epoch:
        return epochs
    return tuple((e, o) for e, o in epochs if o < start) + ((epoch, start),)


def end_offset_for(epochs, requested: int, leo: int) -> tuple[int, int]:
    """OffsetsForLeaderEpoch: (largest epoch <= requested, where it ends)."""
    if requested == NONE or not epochs:
        return NONE, NONE
    if requested == epochs[-1][0]:
        return requested, leo
    higher = [o for e, o in epochs if e > requested]
    if not higher:
        return NONE, NONE
    floor = [e for e, _ in epochs if e <= requested]
    return (floor[-1] if floor else requested), higher[0]


def without(isr: tuple[int, ...], r: int) -> tuple[int, ...]:
    if r not in isr:
        return isr
    i = isr.index(r)
    return isr[:i] + isr[i + 1 :]


# States are built positionally, not with NamedTuple._replace: the explorer makes
# millions, and _replace costs three times as much.


def truncate(rep: Replica, end: int) -> Replica:
    log, hw, epoch, leader, isr, epochs = rep
    end = max(0, min(end, len(log)))
    if end == len(log) and hw <= end and (not epochs or epochs[-1][1] < end):
        return rep  # nothing to cut (epoch starts increase along the cache)
    return Replica(log[:end], min(hw, end), epoch, leader, isr, tuple((e, o) for e, o in epochs if o < end))


def with_replica(s: State, r: int, rep: Replica) -> State:
    reps = s[0]
    return State(reps[:r] + (rep,) + reps[r + 1 :], *s[1:])


def with_quorum(s: State, r: int, rep: Replica, isr: tuple[int, ...], elr: tuple[int, ...]) -> State:
    """`with_replica`, the controller's ISR and ELR changed as well."""
    reps = s[0]
    return State(reps[:r] + (rep,) + reps[r + 1 :], s[1], s[2], isr, s[4], s[5], elr, s[7])


# --- the model ------------------------------------------------------------------------------


class Model:
    def __init__(self, variant: str = "kip320", bounds: Bounds | None = None) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
        self.variant = variant
        self.bounds = bounds or Bounds()
        self.fencing = variant in ("kip320", "kip966")
        self.elr = variant == "kip966"
        # Memos for the explorer, which meets the same replicas and logs in many states:
        # what the replicas' logs alone break, by logs, and `reconcile`'s answers.
        self._log_faults: dict[tuple, tuple[set[int], list[tuple[str, str]]]] = {}
        self._reconciled: dict[tuple[Replica, Replica], Replica] = {}

    def initial(self) -> State:
        n = self.bounds.replicas
        isr = tuple(range(n))
        reps = tuple(Replica((), 0, 0, 0, isr, ((0, 0),) if r == 0 else ()) for r in range(n))
        return State(reps, 0, 0, isr, 0, ())

    # A replica "believes it leads" when the last state it learnt names it leader.
    @staticmethod
    def believes_leader(s: State, r: int) -> bool:
        return s.replicas[r].leader == r

    def follows(self, s: State, r: int, leader: int) -> bool:
        """Does `leader` count `r` as fetching from it? Before KIP-320 a fetch carries no
        epoch, so any fetch from r counts; with it, only one from the leader's own epoch."""
        rep = s.replicas[r]
        return rep.leader == leader and (not self.fencing or rep.epoch == s.replicas[leader].epoch)

    def quorum(self, s: State, isr: tuple[int, ...], unclean: tuple[int, ...] = ()):
        """The controller's (ISR, ELR) when the ISR becomes `isr`. KIP-966 (UpdateElr in
        kip_966_functions.tla): at or above min.insync.replicas nobody else is eligible;
        below it the members that left join the eligible ones, less any that shut down
        uncleanly (`unclean`; KAFKA-15586: a new broker epoch at registration)."""
        if not self.elr:
            return isr, ()
        if len(isr) >= self.bounds.min_isr:
            return isr, ()
        left = set(s.q_elr) | set(s.q_isr)
        return isr, tuple(sorted(left.difference(isr, unclean)))

    # Each action returns the steps it enables, (label, next state) pairs: lists, not
    # generators, since most actions are disabled in most states and the explorer asks
    # 23 of them in each of a million states.
    def actions(self, s: State) -> list[tuple[str, State]]:
        steps = self.controller_elect_leader(s) + self.controller_shrink_isr(s)
        for r in range(self.bounds.replicas):
            steps += self.become_leader(s, r)
            steps += self.become_follower_and_truncate(s, r)
            steps += self.leader_write(s, r)
            steps += self.follower_replicate(s, r)
            steps += self.leader_inc_high_watermark(s, r)
            steps += self.leader_change_isr(s, r)
            steps += self.restart(s, r)
            if self.bounds.power_loss:
                steps += self.power_loss(s, r)
        return steps

    # -- controller -------------------------------------------------------------------------

    def controller_elect_leader(self, s: State):
        """Enabled below the epoch bound. Clean: any ISR member (the controller may see
        any replica fail, correctly or not). Unclean: any replica at all."""
        if s.q_epoch >= self.bounds.max_epoch:
            return []
        steps = []
        # KIP-966: an empty ISR is led from the ELR; with both empty, Kafka 4 elects the last
        # known leader (uncleanly, unasked: PartitionChangeBuilder.canElectLastKnownLeader);
        # unclean election may pick anyone. (q_leader is the last leader the controller chose.)
        clean = s.q_elr if self.elr and not s.q_isr else s.q_isr
        last_known = (s.q_leader,) if self.elr and not s.q_isr and not s.q_elr else ()
        candidates = range(self.bounds.replicas) if self.bounds.unclean else clean + last_known
        for n in candidates:
            if n == s.q_leader and s.replicas[n].leader != NONE:
                continue  # re-electing the same leader only matters after it restarted
            # (an unclean election leaves nobody eligible: Kafka clears the ELR)
            isr, elr = self.quorum(s, s.q_isr if n in s.q_isr else (n,)) if n in clean else ((n,), ())
            steps.append((f"ControllerElectLeader({n})",
                          State(s.replicas, s.q_epoch + 1, n, isr, s.next_id, s.committed, elr, s[7])))
        return steps

    def controller_shrink_isr(self, s: State):
        """The controller drops a replica it believes dead from the ISR (never the leader,
        never the last member)."""
        if len(s.q_isr) < 2:
            return []
        steps = []
        for r in s.q_isr:
            if r != s.q_leader:
                isr, elr = self.quorum(s, without(s.q_isr, r))
                steps.append((f"ControllerShrinkIsr({r})",
                              State(s.replicas, s.q_epoch, s.q_leader, isr, s.next_id, s.committed, elr, s[7])))
        return steps

    # -- replicas learn the quorum state (LeaderAndIsr, possibly late) ------------------------

    def become_leader(self, s: State, r: int):
        rep = s.replicas[r]
        if s.q_leader != r or rep.epoch >= s.q_epoch:
            return ()
        new = Replica(rep.log, rep.hw, s.q_epoch, r, s.q_isr, assign(rep.epochs, s.q_epoch, len(rep.log)))
        return [(f"BecomeLeader({r}, epoch {s.q_epoch})", with_replica(s, r, new))]

    def become_follower_and_truncate(self, s: State, r: int):
        rep, leader = s.replicas[r], s.q_leader
        restarted = rep.leader == NONE
        if leader == r or (rep.epoch >= s.q_epoch and not restarted):
            return ()
        if self.variant == "legacy-hw":
            new = truncate(rep, rep.hw)
        else:
            lead = s.replicas[leader]
            if not self.believes_leader(s, leader):
                return ()  # NOT_LEADER_OR_FOLLOWER: ask again later
            if self.fencing and lead.epoch != s.q_epoch:
                return ()  # KIP-320: a leader not (yet) in our epoch refuses to answer
            new = self.reconcile(rep, lead)
        new = Replica(new.log, new.hw, s.q_epoch, leader, (), new.epochs)
        return [(f"BecomeFollowerAndTruncate({r}, epoch {s.q_epoch}, to {len(new.log)})", with_replica(s, r, new))]

    def reconcile(self, rep: Replica, lead: Replica) -> Replica:
        """OffsetsForLeaderEpoch until the follower's log agrees with the leader's. The
        leader does not change meanwhile, so the exchange is one atomic step here."""
        known = self._reconciled.get((rep, lead))
        if known is None:
            *_, known = self.reconcile_steps(rep, lead)
            self._reconciled[rep, lead] = known
        return known

    def reconcile_steps(self, rep: Replica, lead: Replica) -> Iterator[Replica]:
        """The follower after each OffsetsForLeaderEpoch round trip (the implementation
        truncates once per answer; trace validation checks each cut against these)."""
        while True:
            latest = rep.epochs[-1][0] if rep.epochs else NONE
            e, end = end_offset_for(lead.epochs, latest, len(lead.log))
            if e == NONE:
                yield truncate(rep, rep.hw)  # nothing in common that we know of
                return
            if self.variant == "kip101":
                yield truncate(rep, end)  # KIP-101 alone trusts the answer as it is
                return
            own_e, own_end = end_offset_for(rep.epochs, e, len(rep.log))
            if own_e == e:
                yield truncate(rep, min(end, own_end))
                return
            # KIP-279: we never had the epoch the leader answered for. Cut to the end of
            # our largest smaller epoch and ask again (AbstractFetcherThread does the same).
            shorter = truncate(rep, own_end)
            yield shorter
            if shorter == rep:
                return
            rep = shorter

    # -- the data path --------------------------------------------------------------------------

    def leader_write(self, s: State, r: int):
        """A replica that believes it leads appends a new record in its epoch (a zombie
        leader, deposed without knowing it, can too)."""
        if not self.believes_leader(s, r) or s.next_id >= self.bounds.records:
            return ()
        log, hw, epoch, leader, isr, epochs = s.replicas[r]
        reps = s.replicas[:r] + (Replica(log + ((s.next_id, epoch),), hw, epoch, leader, isr, epochs),) + s.replicas[r + 1 :]
        return [(f"LeaderWrite({r}, record {s.next_id})",
                 State(reps, s.q_epoch, s.q_leader, s.q_isr, s.next_id + 1, *s[5:]))]

    def follower_replicate(self, s: State, f: int):
        """One fetch: the follower gets the leader's next entry and HW. A fetch past the
        leader's end is out of range: the follower cuts its log to the leader's end."""
        rep = s.replicas[f]
        ldr = rep.leader
        if ldr in (NONE, f) or not self.believes_leader(s, ldr):
            return ()
        lead = s.replicas[ldr]
        if self.fencing and lead.epoch != rep.epoch:
            return ()  # FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH
        if len(rep.log) > len(lead.log):
            return [(f"FollowerTruncateOutOfRange({f}, to {len(lead.log)})",
                     with_replica(s, f, truncate(rep, len(lead.log))))]
        log, epochs = rep.log, rep.epochs
        if len(log) < len(lead.log):
            entry = lead.log[len(log)]
            epochs = assign(epochs, entry[1], len(log))
            log = log + (entry,)
        hw = max(rep.hw, min(lead.hw, len(log)))
        new = Replica(log, hw, rep.epoch, ldr, rep.isr, epochs)
        if new == rep:
            return ()
        return [(f"FollowerReplicate({f} from {ldr})", with_replica(s, f, new))]

    def leader_inc_high_watermark(self, s: State, ldr: int):
        """HW := the smallest LEO over the leader's ISR, counting only followers that
        fetch from it. Everything below it is acknowledged (the ghost `committed`)."""
        if not self.believes_leader(s, ldr):
            return ()
        lead = s.replicas[ldr]
        ends = [len(lead.log)]
        for r in lead.isr:
            if r != ldr:
                if not self.follows(s, r, ldr):
                    return ()
                ends.append(len(s.replicas[r].log))
        hw = min(ends)
        if hw <= lead.hw:
            return ()
        if self.elr and len(lead.isr) < self.bounds.min_isr:
            return ()  # KIP-966's strict min ISR: the HW waits for min.insync.replicas in the ISR
        newly = tuple((o, lead.log[o][0]) for o in range(lead.hw, hw))
        if len(lead.isr) < self.bounds.min_isr:
            newly = ()  # the HW moves, but acks=all answers NOT_ENOUGH_REPLICAS_AFTER_APPEND
        committed = tuple(sorted(set(s.committed) | set(newly)))
        reps = s.replicas[:ldr] + (Replica(lead.log, hw, *lead[2:]),) + s.replicas[ldr + 1 :]
        return [(f"LeaderIncHighWatermark({ldr}, to {hw})",
                 State(reps, s.q_epoch, s.q_leader, s.q_isr, s.next_id, committed, *s[6:]))]

    def leader_change_isr(self, s: State, ldr: int):
        """LeaderShrinkIsr / LeaderExpandIsr through the controller, which accepts only a
        change from the leader of the current epoch (the partition epoch check)."""
        lead = s.replicas[ldr]
        if not self.believes_leader(s, ldr) or s.q_leader != ldr or s.q_epoch != lead.epoch:
            return ()
        if lead.isr != s.q_isr:
            # The controller changed the ISR since the leader last heard (a broker fenced or
            # re-registered): AlterPartition carries the partition epoch and a stale one is
            # refused (INVALID_UPDATE_VERSION; a stale zkVersion before KRaft), so the leader
            # first learns the new ISR. Without this, a leader could write back a member the
            # controller had removed after it lost power (the KIP-966 work found it).
            return [(f"LeaderLearnsIsr({ldr}, {list(s.q_isr)})",
                     with_replica(s, ldr, Replica(*lead[:4], s.q_isr, lead.epochs)))]
        steps = []
        for r in range(self.bounds.replicas):
            if r == ldr:
                continue
            if r in lead.isr:
                isr = without(lead.isr, r)
                steps.append((f"LeaderShrinkIsr({ldr}, drop {r})",
                              with_quorum(s, ldr, Replica(*lead[:4], isr, lead.epochs), *self.quorum(s, isr))))
            elif (self.follows(s, r, ldr) and len(s.replicas[r].log) >= lead.hw
                  and len(s.replicas[r].log) >= self._epoch_start(lead)):
                # Kafka also wants the follower past the start of the leader's epoch, so a
                # leader with a stale HW (just restarted) cannot admit an empty follower.
                isr = tuple(sorted(lead.isr + (r,)))
                steps.append((f"LeaderExpandIsr({ldr}, add {r})",
                              with_quorum(s, ldr, Replica(*lead[:4], isr, lead.epochs), *self.quorum(s, isr))))
        return steps

    @staticmethod
    def _epoch_start(lead: Replica) -> int:
        return next((o for e, o in lead.epochs if e == lead.epoch), 0)

    def restart(self, s: State, r: int):
        """A process restart: the log and epoch cache are on disk, its role is forgotten
        (leader NONE until the controller tells it again) and its HW comes back from a
        checkpoint that may be stale. It keeps the epoch number it had seen: the
        controller never hands a restarted broker its old epoch again."""
        rep = s[0][r]
        if rep.leader == NONE:
            return ()
        shutdowns = self._one_more_unclean(s)
        if shutdowns is None:
            return ()
        # `_rejoin(s, r, restarted(rep, hw))` for every checkpoint hw, built once: a third of
        # the explorer's transitions are restarts.
        log, _, epoch, _, _, epochs = self.restarted(rep, rep.hw)
        epoch = max(epoch, s[1])
        isr, elr = self.rejoined(s, r)
        before, after = s[0][:r], s[0][r + 1 :]
        return [(f"Restart({r}, hw checkpoint {hw})",
                 State(before + (Replica(log, hw, epoch, NONE, (), epochs),) + after, s[1], s[2], isr, s[4], s[5], elr,
                       shutdowns))
                for hw in range(rep.hw + 1)]

    @staticmethod
    def restarted(rep: Replica, hw: int) -> Replica:
        """The replica as a restart loads it. Loading cuts epoch entries that start at the
        log end (Kafka's LogLoader truncates the epoch cache to the log end offset), so an
        epoch led without a write is forgotten; trace validation found this."""
        log, _, epoch, _, _, epochs = rep
        if epochs and epochs[-1][1] >= len(log):
            epochs = truncate(rep, len(log)).epochs
        return Replica(log, min(hw, len(log)), epoch, NONE, (), epochs)

    def rejoined(self, s: State, r: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(ISR, ELR) once broker r registers again after a crash: out of the ISR, unless it
        is the last member before KIP-966 (nobody else could lead: Kafka 3.x keeps it, the
        hazard KIP-966 removes), and out of the ELR (it shut down uncleanly)."""
        if self.elr:
            return self.quorum(s, without(s.q_isr, r), unclean=(r,))
        return without(s.q_isr, r) or s.q_isr, ()

    def _rejoin(self, s: State, r: int, rep: Replica) -> State:
        """The state once broker r, restarted as `rep`, registers again (`rejoined`). It
        cannot lead an epoch elected before its restart (KIP-380): only a new election can
        make it leader."""
        return with_quorum(s, r, Replica(rep.log, rep.hw, max(rep.epoch, s.q_epoch), *rep[3:]), *self.rejoined(s, r))

    def power_loss(self, s: State, r: int):
        """The machine loses power: with no fsync, any tail of the log may be gone (the
        epoch cache is a checkpoint, replaced atomically, and is cut to the log on
        recovery). The process restarts as after a crash."""
        rep = s.replicas[r]
        shutdowns = self._one_more_unclean(s)
        if shutdowns is None:
            return ()
        steps = []
        for keep in range(len(rep.log)):
            cut = truncate(rep, keep)
            for hw in range(cut.hw + 1):
                steps.append((f"PowerLoss({r}, keeps {keep} records, hw checkpoint {hw})",
                              self._rejoin(s, r, self.restarted(cut, hw))._replace(unclean_shutdowns=shutdowns)))
        return steps

    def _one_more_unclean(self, s: State) -> int | None:
        """The ghost count after one more unclean shutdown; None past the bound."""
        if self.bounds.unclean_shutdowns is None:
            return 0  # (not counted: a count nothing reads would only multiply the states)
        return s[7] + 1 if s[7] < self.bounds.unclean_shutdowns else None

    @staticmethod
    def describe(s: State) -> str:
        return describe(s)

    # -- symmetry: states that differ only by the replicas' names ----------------------------

    @staticmethod
    def canonical(s: State) -> State:
        """One representative per renaming of the replicas: the replicas ordered by what
        they hold and their role (which no renaming changes), all orders of tied ones
        tried, the smallest renamed state taken. Replicas rarely tie, so this is mostly
        one renaming where the minimum over all n! was n! of them."""
        reps, q_leader, q_isr = s[0], s[2], s[3]
        keys = [(log, hw, epoch, epochs, leader == r, leader == NONE, len(isr), r == q_leader, r in q_isr)
                for r, (log, hw, epoch, leader, isr, epochs) in enumerate(reps)]
        order = sorted(range(len(reps)), key=keys.__getitem__)
        ordered = [keys[r] for r in order]
        if all(map(operator.ne, ordered, ordered[1:])):
            return s if order == list(range(len(order))) else _renamed(s, order)  # (already in order: as it is)
        groups = [list(g) for _, g in itertools.groupby(order, key=keys.__getitem__)]
        return min(_renamed(s, [r for g in choice for r in g])
                   for choice in itertools.product(*(itertools.permutations(g) for g in groups)))

    # -- invariants -----------------------------------------------------------------------------

    def invariants(self, s: State) -> list[tuple[str, str]]:
        """(name, what is wrong) for every invariant `s` breaks."""
        bad = []
        logs = tuple(rep[0] for rep in s[0])
        faults = self._log_faults.get(logs)
        if faults is None:
            faults = self._log_faults[logs] = _log_faults(logs)
        descending, inconsistent = faults
        for r, rep in enumerate(s.replicas):
            if not 0 <= rep.hw <= len(rep.log):
                bad.append(("TypeOk", f"replica {r} has HW {rep.hw} beyond its log end {len(rep.log)}"))
            if r in descending:
                bad.append(("TypeOk", f"replica {r} has epochs going down in its log"))
        bad.extend(inconsistent)
        for r in s.q_isr:
            if s.replicas[r].leader == NONE:
                continue  # restarted and not yet back: judged when it leads or follows again
            log = s.replicas[r].log
            missing = _lacks(log, s.committed)
            if missing:
                bad.append(("StrongIsr", f"ISR member {r} lacks acknowledged record(s) {missing} (offset, id)"))
        leader = s.q_leader
        lead = s.replicas[leader]
        if self.believes_leader(s, leader) and lead.epoch == s.q_epoch:
            missing = _lacks(lead.log, s.committed)
            if missing:
                bad.append(("LeaderCompleteness", f"leader {leader} of epoch {s.q_epoch} lacks {missing}"))
        if self.elr:
            bad.extend(self._kip966_faults(s))
        return bad

    def _kip966_faults(self, s: State) -> list[tuple[str, str]]:
        """The properties of the KIP-966 TLA+ specification (Vanlightly/kafka-tlaplus,
        kip_966_properties.tla) that StrongIsr and LeaderCompleteness do not already say."""
        bad = []
        for r in sorted(set(s.q_isr) | set(s.q_elr)):
            log = s.replicas[r].log
            if s.replicas[r].leader == NONE:
                continue  # not running (restarted, not yet back): not a candidate
            missing = _lacks(log, s.committed)
            if missing:
                bad.append(("LeaderCandidateCompleteness", f"ISR/ELR member {r} lacks acknowledged {missing}"))
        leader = s.q_leader
        lead = s.replicas[leader]
        if (self.believes_leader(s, leader) and lead.epoch == s.q_epoch and len(lead.isr) >= self.bounds.min_isr
                and not set(s.q_isr + s.q_elr) <= set(lead.isr)):
            bad.append(("ReplicationQuorumSuperset", f"leader {leader}'s ISR {list(lead.isr)} lacks some of the"
                                                     f" controller's ISR {list(s.q_isr)} + ELR {list(s.q_elr)}"))
        held = {rid for rep in s.replicas for rid, _ in rep.log}
        lost = [(o, rid) for o, rid in s.committed if rid not in held]
        if lost:
            bad.append(("NoCommittedRecordLostGlobally", f"no replica holds acknowledged {lost}"))
        return bad


def _lacks(log, committed) -> list[tuple[int, int]]:
    """The acknowledged (offset, record id) pairs `log` does not hold at their offset."""
    return [(o, rid) for o, rid in committed if o >= len(log) or log[o][0] != rid]


def _log_faults(logs) -> tuple[set[int], list[tuple[str, str]]]:
    """(replicas whose log has epochs going down, ReplicaLogConsistency breaches)."""
    descending = {r for r, log in enumerate(logs) if any(a[1] > b[1] for a, b in zip(log, log[1:], strict=False))}
    inconsistent = []
    for a in range(len(logs)):
        for b in range(a + 1, len(logs)):
            for i in range(min(len(logs[a]), len(logs[b]))):
                if logs[a][i][1] == logs[b][i][1] and logs[a][: i + 1] != logs[b][: i + 1]:
                    inconsistent.append(("ReplicaLogConsistency",
                                         f"replicas {a} and {b} hold different logs up to offset {i}, same epoch there"))
                    break
    return descending, inconsistent


# For each order of the replicas: the new name of each old one, and the ISRs renamed so
# far (there are few ISRs, and renaming one is most of the cost of renaming a state).
_RENAMINGS: dict[tuple[int, ...], tuple[list[int], dict]] = {}


def _renamed(s: State, order) -> State:
    """`s` with replica order[i] renamed i everywhere."""
    order = tuple(order)
    renaming = _RENAMINGS.get(order)
    if renaming is None:
        name = [NONE] * (len(order) + 1)  # (name[NONE] is the last: NONE is -1)
        for new, old in enumerate(order):
            name[old] = new
        renaming = _RENAMINGS[order] = (name, {})
    name, isrs = renaming
    old_reps = s[0]
    reps = []
    for old in order:
        log, hw, epoch, leader, isr, epochs = old_reps[old]
        new_isr = isrs.get(isr)
        if new_isr is None:
            new_isr = isrs[isr] = tuple(sorted(map(name.__getitem__, isr)))
        reps.append(Replica(log, hw, epoch, name[leader], new_isr, epochs))
    q_isr = isrs.get(s[3])
    if q_isr is None:
        q_isr = isrs[s[3]] = tuple(sorted(map(name.__getitem__, s[3])))
    q_elr = isrs.get(s[6])
    if q_elr is None:
        q_elr = isrs[s[6]] = tuple(sorted(map(name.__getitem__, s[6])))
    return State(tuple(reps), s[1], name[s[2]], q_isr, s[4], s[5], q_elr, s[7])


def describe(s: State) -> str:
    """One line per replica, for traces."""
    elr = f", elr {list(s.q_elr)}" if s.q_elr else ""
    lines = [f"quorum: epoch {s.q_epoch}, leader {s.q_leader}, isr {list(s.q_isr)}{elr};"
             f" acknowledged {list(s.committed)}"]
    for r, rep in enumerate(s.replicas):
        log = " ".join(f"{rid}@e{e}" for rid, e in rep.log) or "-"
        role = "leader" if rep.leader == r else (f"follows {rep.leader}" if rep.leader != NONE else "restarted")
        lines.append(f"  r{r}: log [{log}] hw {rep.hw} epoch {rep.epoch} {role}")
    return "\n".join(lines)
