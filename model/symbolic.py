"""The reference model as z3 constraints, with the configuration symbolic.

Bounded model checking: the state after each of K steps is a set of z3 variables, each
step is one action chosen by the solver (with its target replica), and a guarantee is
violated when some step's state is bad. The configuration - acks, replication factor,
min.insync.replicas, unclean.leader.election.enable, log.flush.interval.messages (every
message or not), enable.idempotence, retries, max.in.flight.requests.per.connection,
the consumer's commit strategy - is a set of z3 variables too, so one encoding serves
every configuration: `verify` fixes them, `synthesize` lets the solver choose.

Four small models, one record or two each (what a violation needs, as in model/):

    partition   one record through a partition of `brokers` brokers: append, replicate,
                acknowledge (acks 0 / 1 / all with min.insync.replicas), ISR shrink and
                expand, crash, power loss (only fsynced bytes survive), restart, clean or
                unclean election. At most `failures` replicas down at once. With
                eligible.leader.replicas.enable, KIP-966: strict min ISR, the eligible
                leader replicas, a restart leaving ISR and ELR, and a broker that lost
                power counted as down until it is back in the ISR (the KIP's bound).
                Guarantees: durability and read-your-writes (an acknowledged record missing
                from the leader), monotonic-reads (a record below the high watermark, later
                missing from the leader).
    producer    one or two records and their requests: answers lost, retries, requests
                the network delivers twice (with the duplicate fault), in-flight requests,
                the broker's deduplication. exactly-once (a record written
                twice), partition-order (two records in the log out of send order).
    consumer    one record, one application with a commit strategy, crashes that restart
                it from the committed offset. consumer-no-loss, consumer-no-duplicates.
    isolation   one transactional record, a reader with isolation.level: no-aborted-reads.
    availability  with `failures` brokers down and the rest caught up, can an acks=all
                write succeed? Not a run but a condition on the failure set: proved for
                runs of any length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import z3

ACKS = (0, 1, -1)
STRATEGIES = ("after", "before", "auto", "auto-async", "transactional")


@dataclass
class Config:
    """The symbolic configuration: z3 variables, shared by every model of one query."""

    acks: z3.ArithRef = field(default_factory=lambda: z3.Int("acks"))
    rf: z3.ArithRef = field(default_factory=lambda: z3.Int("replication.factor"))
    min_isr: z3.ArithRef = field(default_factory=lambda: z3.Int("min.insync.replicas"))
    unclean: z3.BoolRef = field(default_factory=lambda: z3.Bool("unclean.leader.election.enable"))
    flush: z3.BoolRef = field(default_factory=lambda: z3.Bool("log.flush.interval.messages=1"))
    idempotence: z3.BoolRef = field(default_factory=lambda: z3.Bool("enable.idempotence"))
    retries: z3.ArithRef = field(default_factory=lambda: z3.Int("retries"))
    in_flight: z3.ArithRef = field(default_factory=lambda: z3.Int("max.in.flight.requests.per.connection"))
    strategy: z3.ArithRef = field(default_factory=lambda: z3.Int("commit.strategy"))
    read_committed: z3.BoolRef = field(default_factory=lambda: z3.Bool("isolation.level=read_committed"))
    # Fixed only when on: the partition model then encodes KIP-966 (PartitionModel's `elr`),
    # and a query without it is the same formula as before it existed.
    elr: z3.BoolRef = field(default_factory=lambda: z3.Bool("eligible.leader.replicas.enable"))

    def domain(self, brokers: int) -> list:
        """What Kafka allows (ProducerConfig refuses idempotence without acks=all, retries
        and at most 5 in flight; a topic cannot have more replicas than brokers)."""
        return [z3.Or(*[self.acks == a for a in ACKS]), self.rf >= 1, self.rf <= brokers,
                self.min_isr >= 1, self.min_isr <= self.rf, self.retries >= 0, self.in_flight >= 1,
                self.strategy >= 0, self.strategy < len(STRATEGIES),
                z3.Implies(self.idempotence, z3.And(self.acks == -1, self.retries > 0, self.in_flight <= 5))]


@dataclass
class Step:
    """One action of a trace: its name, target and the state after it (for printing and
    for translating to a simulator fault schedule)."""

    action: str
    target: int | None
    state: dict


class _Model:
    """Shared machinery: K+1 states of named variables, one action per transition."""

    ACTIONS: tuple[str, ...] = ()

    def __init__(self, cfg: Config, steps: int, prefix: str) -> None:
        self.cfg, self.k, self.prefix = cfg, steps, prefix
        self.act = [z3.Int(f"{prefix}.action{i}") for i in range(steps)]
        self.target = [z3.Int(f"{prefix}.target{i}") for i in range(steps)]

    def init(self) -> list:
        raise NotImplementedError

    def transitions(self) -> list:
        raise NotImplementedError

    def constraints(self) -> list:
        """Runs from the initial state (bounded model checking)."""
        return self.init() + self.transitions()

    def aux(self, s: dict) -> list:
        """Auxiliary invariants that strengthen k-induction (checked on every reachable
        state before they are used, so a wrong one costs the unbounded proof, not soundness)."""
        return []

    def is_(self, i: int, name: str, target: int | None = None):
        c = self.act[i] == self.ACTIONS.index(name)
        return c if target is None else z3.And(c, self.target[i] == target)

    def trace(self, m: z3.ModelRef, states: list[dict], upto: int) -> list[Step]:
        out = []
        for i in range(upto):
            a = self.ACTIONS[m.eval(self.act[i], model_completion=True).as_long()]
            if a == "stutter":
                continue
            t = m.eval(self.target[i], model_completion=True).as_long()
            out.append(Step(a, t if a in self.TARGETED else None, self.values(m, states[i + 1])))
        return out

    TARGETED: tuple[str, ...] = ()

    @staticmethod
    def values(m: z3.ModelRef, state: dict) -> dict:
        def val(x):
            if isinstance(x, list):
                return [val(y) for y in x]
            v = m.eval(x, model_completion=True)
            return z3.is_true(v) if z3.is_bool(v) else v.as_long()
        return {k: val(v) for k, v in state.items()}


def _unchanged(a: dict, b: dict, keep: set[str]) -> list:
    out = []
    for name in sorted(keep):  # a set of str: hash order would make z3's model vary per process
        x, y = a[name], b[name]
        if isinstance(x, list):
            out += [xi == yi for xi, yi in zip(x, y, strict=True)]
        else:
            out.append(x == y)
    return out


class PartitionModel(_Model):
    ACTIONS = ("stutter", "append", "ack", "ack-without-answer", "replicate", "shrink-isr", "expand-isr",
               "crash", "power-loss", "restart", "elect", "truncate")
    TARGETED = ("replicate", "shrink-isr", "expand-isr", "crash", "power-loss", "restart", "elect", "truncate")

    def __init__(self, cfg: Config, steps: int, brokers: int, failures: int, power_loss: bool = False,
                 elr: bool = False) -> None:
        super().__init__(cfg, steps, "partition")
        self.n, self.f, self.power_loss = brokers, failures, power_loss
        # KIP-966 (eligible.leader.replicas.enable): strict min ISR, the ELR, the ISR may
        # empty, elections ISR -> ELR -> last known leader (uncleanly, as Kafka 4 does
        # unasked) -> unclean, a restarted broker (an unclean shutdown) leaves both - as
        # model/replication.py's kip966 and impl/controller do.
        self.elr = elr
        self.states = [self._state(i) for i in range(steps + 1)]

    def _state(self, i: int) -> dict:
        n = self.n
        # (recovering: shut down uncleanly - a crash or a power loss - and not yet back in the
        # ISR, counted as down: KIP-966's bound; last: the last leader elected, which Kafka 4
        # elects again once ISR and ELR are empty)
        extra = {"elr": [z3.Bool(f"elr{i}_{r}") for r in range(n)],
                 "recovering": [z3.Bool(f"recovering{i}_{r}") for r in range(n)],
                 "last": z3.Int(f"last{i}")} if self.elr else {}
        return {**extra, "alive": [z3.Bool(f"alive{i}_{r}") for r in range(n)],
                "has": [z3.Bool(f"has{i}_{r}") for r in range(n)],  # the record is in its log
                "durable": [z3.Bool(f"durable{i}_{r}") for r in range(n)],  # ... and fsynced
                "isr": [z3.Bool(f"isr{i}_{r}") for r in range(n)],
                "leader": z3.Int(f"leader{i}"), "appended": z3.Bool(f"appended{i}"),
                "acked": z3.Bool(f"acked{i}"), "visible": z3.Bool(f"visible{i}")}

    def replica(self, r: int):
        return r < self.cfg.rf

    def leader_is(self, s: dict, r: int):
        return z3.And(s["leader"] == r, s["alive"][r])

    def leader_has(self, s: dict):
        return z3.Or(*[z3.And(self.leader_is(s, r), s["has"][r]) for r in range(self.n)])

    def leader_lacks(self, s: dict):
        return z3.Or(*[z3.And(self.leader_is(s, r), z3.Not(s["has"][r])) for r in range(self.n)])

    def isr_size(self, s: dict):
        return z3.Sum(*[z3.If(z3.And(s["isr"][r], self.replica(r)), 1, 0) for r in range(self.n)])

    def hw_covers(self, s: dict):
        """Every ISR member has the record: the high watermark is past it (under KIP-966
        only while the ISR has min.insync.replicas members: strict min ISR)."""
        strict = [self.isr_size(s) >= self.cfg.min_isr] if self.elr else []
        return z3.And(self.leader_has(s), *strict, *[z3.Implies(z3.And(s["isr"][r], self.replica(r)), s["has"][r])
                                                     for r in range(self.n)])

    def _elr_after(self, s: dict, t: dict, unclean: int | None = None) -> list:
        """KIP-966's UpdateElr for the ISR change s -> t: nobody else eligible once the ISR
        has min.insync.replicas; below it, the members that left join, less `unclean`."""
        if not self.elr:
            return []
        full = self.isr_size(t) >= self.cfg.min_isr
        return [t["elr"][x] == z3.And(z3.Not(full), z3.Not(t["isr"][x]), z3.BoolVal(x != unclean),
                                      z3.Or(s["elr"][x], z3.And(s["isr"][x], z3.Not(t["isr"][x]))))
                for x in range(self.n)]

    def init(self) -> list:
        s0 = self.states[0]
        out = [s0["leader"] == 0, z3.Not(s0["appended"]), z3.Not(s0["acked"]), z3.Not(s0["visible"])]
        for r in range(self.n):
            out += [s0["alive"][r], z3.Not(s0["has"][r]), z3.Not(s0["durable"][r]), s0["isr"][r] == self.replica(r)]
            if self.elr:
                out += [z3.Not(s0["elr"][r]), z3.Not(s0["recovering"][r])]
        return out + ([s0["last"] == 0] if self.elr else [])

    def transitions(self) -> list:
        out = []
        for i, s in enumerate(self.states):
            out += [s["leader"] >= -1, s["leader"] < self.n]
            # Under KIP-966 a broker that shut down uncleanly counts as down until it is back in
            # the ISR: the KIP keeps acknowledged writes through min.insync.replicas - 1 of them.
            out_ = [z3.Or(z3.Not(s["alive"][r]), s["recovering"][r]) if self.elr else z3.Not(s["alive"][r])
                    for r in range(self.n)]
            down = z3.Sum(*[z3.If(z3.And(self.replica(r), out_[r]), 1, 0) for r in range(self.n)])
            out.append(down <= self.f)
            if i < self.k:
                out.append(self._step(i, s, self.states[i + 1]))
        return out + [self.act[i] >= 0 for i in range(self.k)] + [self.act[i] < len(self.ACTIONS)
                                                                   for i in range(self.k)]

    def _step(self, i: int, s: dict, t: dict):
        c, n = self.cfg, self.n
        every = ("alive", "has", "durable", "isr", "leader", "appended", "acked") + (
            ("elr", "recovering", "last") if self.elr else ())
        # Once the high watermark passes the record, consumers may have read it.
        sticky_visible = t["visible"] == z3.Or(s["visible"], self.hw_covers(t))

        def only(*changed: str) -> list:
            return _unchanged(s, t, set(every) - set(changed)) + [sticky_visible]

        def set_one(name: str, r: int, value) -> list:
            return [t[name][x] == (value if x == r else s[name][x]) for x in range(n)]

        options = [z3.And(self.is_(i, "stutter"), *only())]
        options.append(z3.And(  # the leader appends the record (acks=all: only with ISR >= min.insync.replicas)
            self.is_(i, "append"), z3.Not(s["appended"]), s["leader"] >= 0,
            z3.Implies(c.acks == -1, self.isr_size(s) >= c.min_isr), t["appended"],
            *[z3.If(self.leader_is(s, r), z3.And(t["has"][r], t["durable"][r] == z3.Or(s["durable"][r], c.flush)),
                    z3.And(t["has"][r] == s["has"][r], t["durable"][r] == s["durable"][r])) for r in range(n)],
            *only("appended", "has", "durable")))
        options.append(z3.And(  # the producer hears "written": acks=1 from the leader, acks=all once replicated
            self.is_(i, "ack"), z3.Not(s["acked"]), s["appended"], self.leader_has(s),
            z3.Or(c.acks == 1, z3.And(c.acks == -1, self.hw_covers(s), self.isr_size(s) >= c.min_isr)),
            t["acked"], *only("acked")))
        options.append(z3.And(  # acks=0: done as soon as the request leaves, written or not
            self.is_(i, "ack-without-answer"), c.acks == 0, z3.Not(s["acked"]), t["acked"], *only("acked")))
        for r in range(n):
            options.append(z3.And(  # a follower copies the leader's log
                self.is_(i, "replicate", r), self.replica(r), s["alive"][r], z3.Not(s["leader"] == r),
                self.leader_has(s), *set_one("has", r, True), *set_one("durable", r, z3.Or(s["durable"][r], c.flush)),
                *only("has", "durable")))
            others_in_isr = z3.Or(*[z3.And(self.replica(x), s["isr"][x]) for x in range(n) if x != r])
            options.append(z3.And(  # the leader drops a lagging follower; the controller a dead broker
                # (never the last member: the controller does not empty the ISR - before KIP-966)
                self.is_(i, "shrink-isr", r), self.replica(r), s["isr"][r], z3.Not(s["leader"] == r),
                z3.Or(z3.And(z3.Or(*[self.leader_is(s, x) for x in range(n)])),
                      z3.And(z3.Not(s["alive"][r]), z3.BoolVal(True) if self.elr else others_in_isr)),
                *set_one("isr", r, False), *self._elr_after(s, t), *only("isr", "elr")))
            options.append(z3.And(  # a follower holding the record its leader lacks cuts it (KIP-101/279)
                self.is_(i, "truncate", r), self.replica(r), s["alive"][r], z3.Not(s["leader"] == r), s["has"][r],
                self.leader_lacks(s), *set_one("has", r, False), *set_one("durable", r, False),
                *only("has", "durable")))
            options.append(z3.And(  # a caught-up follower rejoins
                self.is_(i, "expand-isr", r), self.replica(r), z3.Not(s["isr"][r]), s["alive"][r],
                s["has"][r] == self.leader_has(s), z3.Or(*[self.leader_is(s, x) for x in range(n)]),
                *set_one("isr", r, True), *self._elr_after(s, t),
                *(set_one("recovering", r, False) if self.elr else []), *only("isr", "elr", "recovering")))
            # A dead leader is replaced by an election (or the partition waits, leaderless).
            deposed = t["leader"] == z3.If(s["leader"] == r, -1, s["leader"])
            options.append(z3.And(  # the process dies; its page cache survives (an unclean shutdown)
                self.is_(i, "crash", r), self.replica(r), s["alive"][r], *set_one("alive", r, False), deposed,
                *(set_one("recovering", r, True) if self.elr else []), *only("alive", "leader", "recovering")))
            options.append(z3.And(  # the machine loses power: only fsynced bytes survive
                self.is_(i, "power-loss", r), z3.BoolVal(self.power_loss), self.replica(r), s["alive"][r], *set_one("alive", r, False),
                *set_one("has", r, s["durable"][r]), deposed, *(set_one("recovering", r, True) if self.elr else []),
                *only("alive", "has", "leader", "recovering")))
            options.append(z3.And(  # back, but out of the ISR until it catches up - unless it is the
                # last member: the controller never empties the ISR before KIP-966; with it, the
                # restart is an unclean shutdown and it leaves the ISR and the ELR
                self.is_(i, "restart", r), self.replica(r), z3.Not(s["alive"][r]), *set_one("alive", r, True),
                *set_one("isr", r, z3.BoolVal(False) if self.elr else z3.And(s["isr"][r], z3.Not(others_in_isr))),
                *self._elr_after(s, t, unclean=r), *only("alive", "isr", "elr")))
            some_isr_alive = z3.Or(*[z3.And(self.replica(x), s["isr"][x], s["alive"][x]) for x in range(n)])
            some_elr_alive = (z3.Or(*[z3.And(self.replica(x), s["elr"][x], s["alive"][x]) for x in range(n)])
                              if self.elr else z3.BoolVal(False))
            leader_gone = z3.Not(z3.Or(*[self.leader_is(s, x) for x in range(n)]))
            clean = s["isr"][r]

            last_known = z3.BoolVal(False)
            if self.elr:  # nobody in ISR or ELR, and the last leader is back: it leads, uncleanly
                last_known = z3.And(*[z3.Not(z3.And(self.replica(x), z3.Or(s["isr"][x], s["elr"][x])))
                                      for x in range(n)],
                                    z3.Or(*[z3.And(s["last"] == x, s["alive"][x]) for x in range(n)]))
                clean = z3.Or(clean, z3.And(z3.Not(some_isr_alive), some_elr_alive))  # (from the ELR)

            def eligible(x: int, some_isr_alive=some_isr_alive, some_elr_alive=some_elr_alive,
                         last_known=last_known):
                if self.elr:
                    fallback = z3.If(some_elr_alive, s["elr"][x], z3.If(last_known, s["last"] == x, c.unclean))
                else:
                    fallback = c.unclean
                return z3.And(self.replica(x), s["alive"][x], z3.If(some_isr_alive, s["isr"][x], fallback))

            # (an unclean election leaves nobody eligible: Kafka clears the ELR)
            elr_after = [z3.If(clean, e, z3.Not(t["elr"][x])) for x, e in enumerate(self._elr_after(s, t))]
            options.append(z3.And(  # the controller elects the first eligible replica in assignment
                # order: from the ISR, or (unclean) any live one (Kafka's election algorithms)
                self.is_(i, "elect", r), eligible(r), leader_gone, *[z3.Not(eligible(x)) for x in range(r)],
                t["leader"] == r,
                *[t["isr"][x] == (z3.BoolVal(True) if x == r else z3.And(s["isr"][x], s["alive"][x], clean))
                  for x in range(n)],
                *elr_after, *([t["last"] == r] if self.elr else []), *only("leader", "isr", "elr", "last")))
        return z3.Or(*options)

    def bad(self, guarantee: str, s: dict):
        if guarantee == "durability":
            if self.elr:  # (KIP-966 may leave the partition leaderless rather than lose: no copy left is a loss too)
                gone = z3.And(*[z3.Or(z3.Not(self.replica(r)), z3.Not(s["has"][r])) for r in range(self.n)])
                return z3.And(s["acked"], z3.Or(self.leader_lacks(s), gone))
            return z3.And(s["acked"], self.leader_lacks(s))
        if guarantee == "read-your-writes":
            # As its checker judges it: the writer goes on reading past the offset of its
            # acknowledged write and does not find it - the same lost record, seen by its
            # writer. acks=0 acknowledges no offset, so there is nothing to read past. Under
            # KIP-966's strict min ISR the high watermark - and so the writer's reads - passes
            # the offset only once the ISR is back at min.insync.replicas.
            strict = [self.isr_size(s) >= self.cfg.min_isr] if self.elr else []
            return z3.And(self.cfg.acks != 0, s["acked"], self.leader_lacks(s), *strict)
        if guarantee == "monotonic-reads":
            # A record below the high watermark (consumers may have read it) missing from the
            # leader: a consumer past it is out of range and starts again, or reads another
            # record at its offset.
            return z3.And(s["visible"], self.leader_lacks(s))
        raise KeyError(guarantee)


class ProducerModel(_Model):
    """Records a (and b, for order): requests, lost answers, retries, network duplicates,
    deduplication."""

    ACTIONS = ("stutter", "send", "append", "append-answer-lost", "reject", "retry", "network-duplicate")
    TARGETED = ACTIONS[1:]

    def __init__(self, cfg: Config, steps: int, duplicates: bool = False) -> None:
        super().__init__(cfg, steps, "producer")
        self.duplicates = duplicates  # the network may deliver a request twice (the `duplicate` fault)
        self.states = [self._state(i) for i in range(steps + 1)]

    def _state(self, i: int) -> dict:
        return {"sent": [z3.Bool(f"sent{i}_{r}") for r in range(2)],
                "inflight": [z3.Bool(f"inflight{i}_{r}") for r in range(2)],
                "copies": [z3.Int(f"copies{i}_{r}") for r in range(2)],
                "first": [z3.Int(f"first{i}_{r}") for r in range(2)],  # log position of its first copy
                "done": [z3.Bool(f"done{i}_{r}") for r in range(2)],  # acknowledged (or given up)
                "stamp": [z3.Int(f"stamp{i}_{r}") for r in range(2)],  # when its request went on the wire
                "retries": z3.Int(f"retries{i}"), "next": z3.Int(f"next{i}"), "clock": z3.Int(f"clock{i}")}

    def init(self) -> list:
        c, s0 = self.cfg, self.states[0]
        out = [s0["retries"] == z3.If(c.retries < 2, c.retries, 2), s0["next"] == 0, s0["clock"] == 0]
        for r in range(2):
            out += [z3.Not(s0["sent"][r]), z3.Not(s0["inflight"][r]), s0["copies"][r] == 0, s0["first"][r] == -1,
                    z3.Not(s0["done"][r]), s0["stamp"][r] == 0]
        return out

    def transitions(self) -> list:
        return [self._step(i, self.states[i], self.states[i + 1]) for i in range(self.k)]

    def _step(self, i: int, s: dict, t: dict):
        c = self.cfg
        every = ("sent", "inflight", "copies", "first", "done", "retries", "next", "stamp", "clock")

        def only(*changed: str) -> list:
            return _unchanged(s, t, set(every) - set(changed))

        def set_one(name: str, r: int, value) -> list:
            return [t[name][x] == (value if x == r else s[name][x]) for x in range(2)]

        options = [z3.And(self.is_(i, "stutter"), *only())]
        for r in range(2):
            # b goes after a; with one request in flight, only once a is answered
            order = z3.BoolVal(True) if r == 0 else z3.And(s["sent"][0], z3.Or(c.in_flight >= 2, s["done"][0]))
            # One connection delivers in order: the broker takes the request sent earliest.
            stamped = [*set_one("stamp", r, s["clock"]), t["clock"] == s["clock"] + 1]
            first_in_line = z3.Or(z3.Not(s["inflight"][1 - r]), s["stamp"][r] < s["stamp"][1 - r])
            options.append(z3.And(self.is_(i, "send", r), z3.Not(s["sent"][r]), order, *set_one("sent", r, True),
                                  *set_one("inflight", r, True), *stamped, *only("sent", "inflight", "stamp", "clock")))
            # The broker: idempotence drops a second copy and refuses b before a.
            dedupe = z3.And(c.idempotence, s["copies"][r] >= 1)
            out_of_order = z3.And(c.idempotence, r == 1, s["copies"][0] == 0)
            appended = [*set_one("copies", r, z3.If(dedupe, s["copies"][r], s["copies"][r] + 1)),
                        *set_one("first", r, z3.If(s["first"][r] >= 0, s["first"][r], s["next"])),
                        t["next"] == s["next"] + 1]
            for name, answered in (("append", True), ("append-answer-lost", False)):
                options.append(z3.And(
                    self.is_(i, name, r), s["inflight"][r], first_in_line, z3.Not(out_of_order), *appended,
                    *set_one("inflight", r, False), *set_one("done", r, z3.Or(s["done"][r], answered)),
                    *only("copies", "first", "next", "inflight", "done")))
            options.append(z3.And(  # NOT_LEADER, OUT_OF_ORDER_SEQUENCE_NUMBER...: not written
                self.is_(i, "reject", r), s["inflight"][r], first_in_line, *set_one("inflight", r, False),
                *only("inflight")))
            options.append(z3.And(  # acks=0 hears nothing, so never retries
                self.is_(i, "retry", r), c.acks != 0, s["sent"][r], z3.Not(s["inflight"][r]), z3.Not(s["done"][r]),
                s["retries"] > 0, t["retries"] == s["retries"] - 1, *set_one("inflight", r, True), *stamped,
                *only("inflight", "retries", "stamp", "clock")))
            options.append(z3.And(  # a second copy of a request the broker already took, any time later
                self.is_(i, "network-duplicate", r), z3.BoolVal(self.duplicates), s["copies"][r] >= 1,
                *appended, *only("copies", "first", "next")))
        return z3.Or(*options)

    def bad(self, guarantee: str, s: dict):
        if guarantee == "delivery":  # given up: sent, failed, not in the log, no retry left to make
            c = self.cfg
            return z3.And(c.acks != 0, c.retries == 0, z3.Or(*[
                z3.And(s["sent"][r], z3.Not(s["inflight"][r]), z3.Not(s["done"][r]), s["copies"][r] == 0)
                for r in range(2)]))
        if guarantee == "exactly-once":
            return z3.Or(s["copies"][0] >= 2, s["copies"][1] >= 2)
        if guarantee == "partition-order":
            return z3.And(s["first"][0] >= 0, s["first"][1] >= 0, s["first"][1] < s["first"][0])
        raise KeyError(guarantee)


class ConsumerModel(_Model):
    """One record, one application: poll, process, commit per strategy; crash and restart
    from the committed offset (the in-hand record is forgotten)."""

    ACTIONS = ("stutter", "poll", "process", "commit", "crash-restart")
    TARGETED = ()

    def __init__(self, cfg: Config, steps: int) -> None:
        super().__init__(cfg, steps, "consumer")
        self.states = [{"position": z3.Int(f"position{i}"), "committed": z3.Int(f"committed{i}"),
                        "in_hand": z3.Bool(f"in_hand{i}"), "processed": z3.Int(f"processed{i}"),
                        "done_processing": z3.Bool(f"done_processing{i}")} for i in range(steps + 1)]

    def init(self) -> list:
        s0 = self.states[0]
        return [s0["position"] == 0, s0["committed"] == 0, z3.Not(s0["in_hand"]), s0["processed"] == 0,
                z3.Not(s0["done_processing"])]

    def transitions(self) -> list:
        return [self._step(i, self.states[i], self.states[i + 1]) for i in range(self.k)]

    def _step(self, i: int, s: dict, t: dict):
        c = self.cfg
        strategy = {name: c.strategy == STRATEGIES.index(name) for name in STRATEGIES}
        every = ("position", "committed", "in_hand", "processed", "done_processing")

        def only(*changed: str) -> list:
            return _unchanged(s, t, set(every) - set(changed))

        process_then_commit = z3.Or(strategy["after"], strategy["auto"])
        options = [
            z3.And(self.is_(i, "stutter"), *only()),
            z3.And(self.is_(i, "poll"), s["position"] == 0, z3.Not(s["in_hand"]), t["position"] == 1, t["in_hand"],
                   z3.Not(t["done_processing"]), *only("position", "in_hand", "done_processing")),
            # processing: after / auto process first; before only once committed; auto-async's
            # worker whenever; the transactional application processes and commits in one step
            z3.And(self.is_(i, "process"), s["in_hand"], z3.Not(s["done_processing"]),
                   z3.Or(process_then_commit, strategy["auto-async"], z3.And(strategy["before"], s["committed"] == 1)),
                   t["processed"] == s["processed"] + 1, t["done_processing"],
                   *only("processed", "done_processing")),
            z3.And(self.is_(i, "commit"), s["in_hand"], s["committed"] == 0, t["committed"] == 1,
                   z3.Or(strategy["before"], strategy["auto-async"], z3.And(process_then_commit, s["done_processing"])),
                   z3.If(s["done_processing"], z3.Not(t["in_hand"]), t["in_hand"] == s["in_hand"]),
                   *only("committed", "in_hand")),
            z3.And(self.is_(i, "process"), strategy["transactional"], s["in_hand"], z3.Not(s["done_processing"]),
                   t["processed"] == s["processed"] + 1, t["committed"] == 1, z3.Not(t["in_hand"]),
                   t["done_processing"], *only("processed", "committed", "in_hand", "done_processing")),
            z3.And(self.is_(i, "crash-restart"), t["position"] == s["committed"], z3.Not(t["in_hand"]),
                   z3.Not(t["done_processing"]), *only("position", "in_hand", "done_processing")),
        ]
        # the transactional strategy never takes the plain process / commit steps
        options[2] = z3.And(options[2], z3.Not(strategy["transactional"]))
        options[3] = z3.And(options[3], z3.Not(strategy["transactional"]))
        return z3.Or(*options)

    def aux(self, s: dict) -> list:
        c = self.cfg
        is_ = {name: c.strategy == STRATEGIES.index(name) for name in STRATEGIES}
        transactional = is_["transactional"]
        commits_after = z3.Or(is_["after"], is_["auto"], transactional)  # commits only what it processed
        return [z3.Implies(commits_after, z3.Implies(s["committed"] == 1, s["processed"] >= 1)),
                z3.Implies(is_["before"], z3.Implies(s["processed"] >= 1, s["committed"] == 1)),
                s["position"] >= 0, s["position"] <= 1, s["committed"] >= 0, s["committed"] <= s["position"],
                s["processed"] >= 0, z3.Implies(s["in_hand"], s["position"] == 1),
                z3.Implies(s["done_processing"], s["processed"] >= 1),
                z3.Implies(z3.And(s["done_processing"], z3.Not(s["in_hand"])), s["committed"] == 1),
                z3.Implies(transactional, s["processed"] == s["committed"])]

    def bad(self, guarantee: str, s: dict):
        if guarantee == "consumer-no-loss":  # committed past the record, which nobody processed or holds
            return z3.And(s["committed"] == 1, s["processed"] == 0, z3.Not(s["in_hand"]))
        if guarantee == "consumer-no-duplicates":
            return s["processed"] >= 2
        raise KeyError(guarantee)


class IsolationModel(_Model):
    """One transaction writes a record and ends (commit or abort) while a consumer reads:
    read_uncommitted reads below the HW, read_committed below the last stable offset."""

    ACTIONS = ("stutter", "write", "read", "commit", "abort")
    TARGETED = ()

    def __init__(self, cfg: Config, steps: int) -> None:
        super().__init__(cfg, steps, "isolation")
        self.states = [{"written": z3.Bool(f"written{i}"), "ended": z3.Int(f"ended{i}"),  # 0 open, 1 commit, 2 abort
                        "read": z3.Bool(f"read{i}")} for i in range(steps + 1)]

    def init(self) -> list:
        s0 = self.states[0]
        return [z3.Not(s0["written"]), s0["ended"] == 0, z3.Not(s0["read"])]

    def transitions(self) -> list:
        return [self._step(i, self.states[i], self.states[i + 1]) for i in range(self.k)]

    def _step(self, i: int, s: dict, t: dict):
        every = ("written", "ended", "read")

        def only(*changed: str) -> list:
            return _unchanged(s, t, set(every) - set(changed))

        stable = s["ended"] != 0  # the record is below the LSO once its transaction ended
        return z3.Or(
            z3.And(self.is_(i, "stutter"), *only()),
            z3.And(self.is_(i, "write"), z3.Not(s["written"]), s["ended"] == 0, t["written"], *only("written")),
            z3.And(self.is_(i, "read"), s["written"], z3.Or(z3.Not(self.cfg.read_committed), stable),
                   z3.Not(z3.And(stable, s["ended"] == 2)),  # an aborted record is filtered once its marker is
                   t["read"], *only("read")),
            z3.And(self.is_(i, "commit"), s["written"], s["ended"] == 0, t["ended"] == 1, *only("ended")),
            z3.And(self.is_(i, "abort"), s["written"], s["ended"] == 0, t["ended"] == 2, *only("ended")))

    def aux(self, s: dict) -> list:
        return [s["ended"] >= 0, s["ended"] <= 2, z3.Implies(s["read"], s["written"]),
                z3.Implies(s["ended"] != 0, s["written"]),
                z3.Implies(z3.And(s["read"], self.cfg.read_committed), s["ended"] == 1)]

    def bad(self, guarantee: str, s: dict):
        if guarantee == "no-aborted-reads":
            return z3.And(s["read"], s["ended"] == 2)
        raise KeyError(guarantee)


MODELS = {
    "durability": "partition", "read-your-writes": "partition", "monotonic-reads": "partition",
    "exactly-once": "producer", "partition-order": "producer", "delivery": "producer",
    "consumer-no-loss": "consumer", "consumer-no-duplicates": "consumer",
    "no-aborted-reads": "isolation",
}
GUARANTEES = (*MODELS, "availability")


def availability_bad(cfg: Config, brokers: int, failures: int):
    """acks=all writes fail for good with `failures` replicas down and the others caught
    up: fewer live replicas than min.insync.replicas. (acks=0/1 writes need only a leader,
    which one live replica can be.)"""
    live = cfg.rf - z3.If(cfg.rf < failures, cfg.rf, failures)
    return z3.Or(live == 0, z3.And(cfg.acks == -1, live < cfg.min_isr))


def build(model: str, cfg: Config, steps: int, brokers: int, failures: int, power_loss: bool = False,
          duplicates: bool = False, elr: bool = False) -> _Model:
    if model == "partition":
        return PartitionModel(cfg, steps, brokers, failures, power_loss, elr)
    if model == "producer":
        return ProducerModel(cfg, steps, duplicates)
    if model == "isolation":
        return IsolationModel(cfg, steps)
    return ConsumerModel(cfg, steps)
