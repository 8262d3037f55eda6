"""Every fault kind, defined once, as data: what it does, to which processes, its
parameters with the values they are drawn from, how long it lasts and how it heals.

The random workload (`check`, `hunt`, `replay`, the catalogue), the Hypothesis campaigns,
the library's strategies, the CLI help and the README's fault table all read `FAULTS`;
`tests/test_faults_vocabulary.py` fails if a kind is listed anywhere else.

A fault never does what the real world cannot. Links are FIFO like TCP; `late`
delivers a *second copy* of a message out of order, and `reorder` delays a message
past later ones, both as a request resent on a new connection while the first sat in
a stalled one.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.protocol.messages import (
    CONTROL_PLANE,
    DATA_PLANE,
    broker_node,
    controller_node,
)


@dataclass(frozen=True)
class Param:
    name: str
    choices: tuple  # a random fault draws one of these; the first is the default
    doc: str
    drawn: bool = True  # False: only fixed schedules set it (random faults take the default)

    @property
    def default(self):
        return self.choices[0]


@dataclass(frozen=True)
class FaultKind:
    name: str
    layer: str  # process | disk | network | clock | application | operator (the failure model's classes)
    does: str  # what it does, to whom
    lasts: str  # how long, and how it heals
    params: tuple[Param, ...] = ()
    # Drawn by `check` and `hunt` unless --faults says otherwise: in every run ("any"), or
    # in runs with a consumer group ("group") or transactional producers ("transactions").
    default_in: tuple[str, ...] = ()
    needs: str | None = None  # "group" | "transactions": the run must have one
    takes_down: bool = False  # brokers stop until restarted (schedules keep one down at a time)
    # What it is in verify's symbolic models (model/symbolic.py), or "" where they do not
    # model it: a verdict under a failure model with such a kind names it as not modelled.
    symbolic: str = ""
    # In a fixed schedule: whether a step names the node it hits (a replica, or -1 for the
    # controller), and the step that ends it ("restart", "heal", or None: it ends itself).
    aimed: bool = False
    ended_by: str | None = "heal"
    # Kinds of which it is a special case: a failure model with one of them has it too.
    within: tuple[str, ...] = ()

    @property
    def by_default(self) -> bool:
        return "any" in self.default_in

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


RATE = "fraction of messages affected while it lasts"
LAG = "shrink-isr, lost answers"
# (The order matters: the random workload draws a kind by its position in a run's list.)
FAULTS: dict[str, FaultKind] = {k.name: k for k in (
    FaultKind("crash", "process", "one live broker's process dies; its disk keeps the page cache",
              "restarted after the fault's duration", default_in=("any",), takes_down=True, symbolic="crash",
              aimed=True, ended_by="restart"),
    FaultKind("power", "disk", "one live broker's machine loses power: bytes not fsynced are lost, the last"
              " write may tear", "restarted after the fault's duration (log recovery runs)", default_in=("any",), takes_down=True,
              symbolic="power-loss", aimed=True, ended_by="restart"),
    FaultKind("partition", "network", "a random split of brokers and controllers into two sides",
              "healed after the fault's duration", default_in=("any",), symbolic=LAG),
    FaultKind("pause", "process", "one node stops (GC pause, SIGSTOP): nothing is delivered to it",
              "resumes after the fault's duration",
              (Param("ms", (5000, 500, 15_000), "how long, in a fixed schedule (random faults: their duration)"),), default_in=("any",), symbolic="crash (its state kept)",
              aimed=True, ended_by=None),
    FaultKind("drop", "network", "every link loses messages", "healed after the fault's duration",
              (Param("rate", (0.05, 0.2), RATE),), default_in=("any",), symbolic="lost answers: retries"),
    FaultKind("duplicate", "network", "every link delivers some messages twice (half the time also"
              " reordering them as `reorder` does)", "healed after the fault's duration",
              (Param("rate", (0.1, 0.2), RATE),), default_in=("any",),
              symbolic="a request delivered twice (producer model)"),
    FaultKind("reorder", "network", "some messages stall in a connection their sender abandons after its"
              " timeout and arrive after what it sent since on a new one (never reordered within one"
              " connection: TCP cannot)", "healed after the fault's duration; stalled messages still arrive",
              (Param("stall_ms", (31_000, 45_000), "how late a stalled message arrives (beyond the 30 s"
                     " timeouts: only a sender that gave up reconnects)"),)),
    FaultKind("clock", "clock", "one node's clock jumps", "never (the clock stays off)",
              (Param("jump_ms", (-60_000, 60_000, 3_600_000), "how far"),), default_in=("any",), aimed=True,
              ended_by=None, symbolic="time abstracted: a timeout may fire at any step"),
    FaultKind("late", "network", "duplicates arrive seconds late, after everything sent since",
              "healed after the fault's duration",
              (Param("rate", (0.05, 0.2), RATE), Param("late_ms", (500, 3000), "how much later the copy arrives")),
              default_in=("transactions",)),
    FaultKind("blackout", "disk", "every live broker loses power at once (a data-centre outage)",
              "all restarted after the fault's duration", takes_down=True, ended_by="restart"),
    FaultKind("isolate", "network", "one node (a broker, a partition's leader or the controller) cut off"
              " from every other", "healed after the fault's duration", symbolic=LAG, aimed=True),
    FaultKind("cut", "network", "replication to one replica cut (data plane, both ways): it falls behind and"
              " leaves the ISR after replica.lag.time.max.ms; or (plane=control) the controller's requests to one"
              " broker lost, one way: its heartbeats still arrive, so it stays registered while it learns no"
              " leader or ISR change (a partial partition, as Jepsen's one-way grudges)",
              "until the schedule heals it (all links, or that replica's)",
              (Param("plane", ("data", "control"), "data: replication links; control: the controller's requests to"
                     " it (fixed schedules only)", drawn=False),), symbolic="shrink-isr",
              aimed=True, within=("partition", "isolate")),
    FaultKind("member", "application", "a group member that owns partitions crashes and a new one joins",
              "the group rebalances",
              (Param("moment", ("any", "processed", "committed"), "when: at once (random member faults), or at"
                     " the member's next moment right after processing a batch, or right after a commit"
                     " (steered runs: the consumer model's trace)"),),
              default_in=("group",), needs="group", symbolic="crash-restart of the application",
              ended_by=None),
    FaultKind("member-pause", "application", "a group member that owns partitions stops (a GC pause: no poll,"
              " no heartbeat) past its session.timeout.ms: the group gives its partitions to the others while it"
              " still believes it owns them - a zombie member, until a heartbeat or commit answer fences it",
              "resumes two heartbeat intervals after its session expired", needs="group", ended_by=None,
              within=("pause",), symbolic="crash-restart of the application (its late commit is refused)"),
    FaultKind("zombie", "application", "a transactional producer gets a second instance beside the live one",
              "the old one is fenced by its epoch", default_in=("transactions",), needs="transactions",
              ended_by=None),
    FaultKind("member-leave", "application", "a group member that owns partitions leaves cleanly (close():"
              " LeaveGroup) and a new one joins", "the group rebalances at once", needs="group", ended_by=None,
              symbolic="crash-restart of the application (a clean leave does no more)", within=("member",)),
    FaultKind("member-stall", "application", "a group member's processing stalls past its max.poll.interval.ms"
              " while its heartbeat thread runs on (KIP-62): it leaves the group, its partitions go to the"
              " others, and it finishes the batch it held before it rejoins", "resumes 2 s after the interval",
              needs="group", ended_by=None, within=("pause",),
              symbolic="crash-restart of the application (its late commit is refused)"),
    FaultKind("producer-crash", "application", "a transactional producer application's process dies (often"
              " mid-transaction) and restarts with the same transactional.id", "its restart fences the dead"
              " instance and aborts what it left open", needs="transactions", ended_by=None),
    FaultKind("add-partitions", "operator", "the group's topic gains a partition (an operator alters the topic):"
              " producers write to it, and the group rebalances once its members' metadata shows it",
              "permanent (at most 4 partitions)", needs="group", ended_by=None),
)}

CLUSTER = tuple(k for k, f in FAULTS.items() if f.layer not in ("application", "operator"))
BY_DEFAULT = tuple(k for k, f in FAULTS.items() if f.by_default)
REDELIVERING = ("duplicate", "late")  # the kinds that deliver a message a second time
NEEDS = {"group": "a commit strategy (--commit-strategy)", "transactions": "a transactional.id"}


def covered(kinds) -> set[str]:
    """The kinds a failure model of `kinds` allows: those, and their special cases."""
    return set(kinds) | {k for k, f in FAULTS.items() if set(f.within) & set(kinds)}


def of_application(app: str, layers=("application", "operator")) -> tuple[str, ...]:
    """The kinds that come with an application ("group" | "transactions"): those that
    need one, and those drawn by default in runs that have one - of `layers`."""
    return tuple(k for k, f in FAULTS.items() if (f.needs == app or app in f.default_in) and f.layer in layers)


def usable(kinds, group: bool, transactional: bool) -> set[str]:
    """The kinds a failure model of `kinds` allows that a run can inject: a member-pause
    is within pause, but only a run with a group has members to pause."""
    return covered(kinds) & set(applicable(group, transactional))


def applicable(group: bool, transactional: bool) -> tuple[str, ...]:
    """The kinds a run may use; and `defaults`: those it draws unless told otherwise."""
    have = {"any", *(["group"] if group else []), *(["transactions"] if transactional else [])}
    return tuple(k for k, f in FAULTS.items() if f.needs is None or f.needs in have)


def defaults(group: bool, transactional: bool) -> tuple[str, ...]:
    have = {"any", *(["group"] if group else []), *(["transactions"] if transactional else [])}
    return tuple(k for k, f in FAULTS.items() if have & set(f.default_in))


# What each layer of faults means in a failure model.
LAYERS = {
    "process": "crash-stop with disk and page cache intact",
    "disk": "power loss: bytes not fsynced are lost, the last write may tear",
    "network": "network faults",
    "clock": "clock jumps",
    "application": "application faults",
    "operator": "operator actions",
}


@dataclass(frozen=True)
class FailureModel:
    """Which failures a verdict was judged under - one vocabulary for check, hunt,
    guarantees, the catalogue and verify; every verdict states it."""

    kinds: tuple[str, ...]
    max_down: int | None = None  # brokers down at once; None: any number
    fsync: bool = False  # log.flush.interval.messages=1: power loss loses nothing acknowledged by a disk
    # Kinds asked for that the judge does not read (verify's models have no clock or
    # duplicates): named in every verdict, never silently dropped.
    unmodelled: tuple[str, ...] = ()
    # KIP-966's bound (eligible.leader.replicas.enable): a broker that shut down uncleanly -
    # crashed or lost power - counts as down until it is back in the ISR (`recovering`): the
    # ELR forgets it, and Kafka 4 may elect the last known leader whatever it lost.
    unclean_until_in_sync: bool = False

    @classmethod
    def of(cls, kinds, max_down: int | None = None, broker_props: dict | None = None,
           unmodelled=()) -> FailureModel:
        flush = (broker_props or {}).get("log.flush.interval.messages", "").strip()
        elr = BrokerConfig.from_properties(broker_props or {}).eligible_leader_replicas
        kinds = tuple(k for k in FAULTS if k in kinds)
        return cls(kinds, max_down, flush == "1", tuple(k for k in FAULTS if k in unmodelled), elr)

    @property
    def power_loss(self) -> bool:
        return any(FAULTS[k].layer == "disk" for k in self.kinds)

    @property
    def duplicates(self) -> bool:
        return "duplicate" in self.kinds

    def describe(self) -> str:
        parts = []
        for layer, text in LAYERS.items():
            kinds = [k for k in self.kinds if FAULTS[k].layer == layer]
            if kinds:
                extra = (" (every message fsynced)" if self.fsync else " (no fsync: Kafka's default)") \
                    if layer == "disk" else ""
                parts.append(f"{text}{extra}: {', '.join(kinds)}")
        if not any(FAULTS[k].layer == "disk" for k in self.kinds):
            parts.append("no power loss")
        down = "any number of brokers" if self.max_down is None else f"at most {self.max_down} broker(s)"
        if self.unclean_until_in_sync and self.max_down is not None:
            down += " (one that shut down uncleanly counts until it is back in the ISR: KIP-966's bound)"
        unmodelled = f"; not modelled: {', '.join(self.unmodelled)}" if self.unmodelled else ""
        return "; ".join(parts) + f"; no disk corruption; {down} down at once{unmodelled}"

    def as_json(self) -> dict:
        return {"kinds": list(self.kinds), "max_down": self.max_down, "fsync": self.fsync,
                "unmodelled": list(self.unmodelled), "unclean_until_in_sync": self.unclean_until_in_sync,
                "text": self.describe()}


def random_max_down(kinds) -> int | None:
    """Brokers down at once in the random workload: each fault heals before the next is
    drawn (impl/sim/workload.py), so one - unless a blackout takes them all."""
    return None if "blackout" in kinds else 1


def kinds_help() -> str:
    """One line per kind, for the CLI's help."""
    return "; ".join(f"{k}: {f.does}" + (f" (with {NEEDS[f.needs]})" if f.needs else "") + (" [default]" if f.by_default else "")
                     for k, f in FAULTS.items())


def table_markdown() -> str:
    """The README's fault table."""
    rows = ["| kind | layer | what it does | lasts / heals | parameters | default | in verify's models |",
            "|---|---|---|---|---|---|---|"]
    for k, f in FAULTS.items():
        params = ", ".join(f"{p.name} in {{{', '.join(map(str, p.choices))}}}" for p in f.params) or "-"
        default = "always" if f.by_default else ", ".join(f"with {NEEDS[d]}" for d in f.default_in) or "no"
        rows.append(f"| `{k}` | {f.layer} | {f.does} | {f.lasts} | {params} | {default} | {f.symbolic or 'not modelled'} |")
    return "\n".join(rows)


# -- injecting them into a simulated cluster -----------------------------------------------

# The Cluster methods the injectors below call to change the world (a skipped fault of
# the workload's shrinking runs them as no-ops, reading the same random numbers).
CLUSTER_ACTIONS = ("crash", "power_loss", "restart", "partition", "isolate", "cut", "heal", "pause",
                   "lossy_network", "clock_jump", "at")


# What Cluster.record_fault writes in the history, by how a fault lasts there: a node down
# until its "restart"; "NODE for N ms"; the network's until a "heal" (anything else is an
# instant: a clock jump, added partitions).
RECORDED_DOWN = ("crash", "shutdown", "power-loss")
RECORDED_TIMED = ("pause", "member-stall")
RECORDED_NETWORK = ("partition", "cut", "isolate", "lossy-network", "duplicate-late")


def intervals(ops, end: int) -> list[dict]:
    """The history's nemesis operations as intervals, for pictures (kafkaproof/diagram.py):
    {"lane": a node, "network" or "nemesis", "t", "t2", "f", "x": what it was}."""
    out, open_down, open_net = [], {}, []
    for op in ops:
        value = op.value or ""
        node = value.split(" ")[0]
        if op.f in RECORDED_DOWN:
            open_down[node] = (op.time, op.f)
        elif op.f == "restart" and node in open_down:
            start, f = open_down.pop(node)
            out.append({"lane": node, "t": start, "t2": op.time, "f": f, "x": f"{f} {node} until restart"})
        elif op.f in RECORDED_TIMED and " for " in value:
            ms = int(value.rsplit(" for ", 1)[1].split()[0])
            out.append({"lane": node, "t": op.time, "t2": op.time + ms, "f": op.f, "x": f"{op.f} {value}"})
        elif op.f == "heal":
            out += [{"lane": "network", "t": start, "t2": op.time, "f": f, "x": f"{text} (healed {op.time} ms)"}
                    for start, f, text in open_net]
            open_net = []
        elif op.f in RECORDED_NETWORK:
            open_net.append((op.time, op.f, f"{op.f} {value}"))
        else:
            out.append({"lane": "nemesis", "t": op.time, "t2": op.time, "f": op.f, "x": f"{op.f} {value}"})
    out += [{"lane": node, "t": start, "t2": end, "f": f, "x": f"{f} {node}, never restarted"}
            for node, (start, f) in open_down.items()]
    out += [{"lane": "network", "t": start, "t2": end, "f": f, "x": text} for start, f, text in open_net]
    return out


def inject(c, kind: str, rng: random.Random, duration_ms: int | None, target: str | None = None,
           **params) -> None:
    """Inject one fault of `kind` into cluster `c` now, healed `duration_ms` later (None:
    a `cut` stays until something heals the network).
    `target` names the node where the kind has one (drawn from the live ones if None);
    parameters not given are drawn from their choices with `rng`, in the order the
    kind lists them (the random workload's draw order: saved runs depend on it)."""
    FAULTS[kind]  # a KeyError names an unknown kind
    _INJECT[kind](c, rng, duration_ms, target, params)


def _draw(kind: str, name: str, rng: random.Random, params: dict):
    return params[name] if name in params else rng.choice(FAULTS[kind].param(name).choices)


def _live_brokers(c) -> list[int]:
    return [b for b in c.broker_ids if broker_node(b) not in c.down]


def _nodes(c) -> list[str]:
    return [broker_node(b) for b in c.broker_ids] + [controller_node(x) for x in c.controller_ids]


def _heal_later(c, ms: int | None) -> None:
    if ms is not None:  # (a campaign or fixed schedule heals with its own step)
        c.at(ms, c.heal)


def _restart_later(c, nodes: list[str], ms: int | None) -> None:
    if ms is not None:  # (a fixed schedule restarts them itself)
        c.at(ms, lambda: [c.restart(n) for n in nodes if n in c.down])


def _crash_or_power(power: bool) -> Callable:
    def go(c, rng, ms, target, params) -> None:
        if target is None:
            up = _live_brokers(c)
            if not up:
                return
            target = broker_node(rng.choice(up))
            if c.config.eligible_leader_replicas and recovering(c) - {int(target.split("-")[1])}:
                return  # KIP-966's failure model: another broker is still down by its unclean shutdown
        c.power_loss(int(target.split("-")[1])) if power else c.crash(target)
        _restart_later(c, [target], ms)
    return go


def recovering(c) -> set[int]:
    """Brokers that crashed or lost power and are not yet back in the ISR of every partition
    they replicate (FailureModel.unclean_until_in_sync counts them as down)."""
    states = c.store.read().partitions.values()
    c.shut_down_uncleanly -= {b for b in c.shut_down_uncleanly if broker_node(b) not in c.down
                              and all(b in st.isr for st in states if b in st.replicas)}
    return set(c.shut_down_uncleanly)


def _blackout(c, rng, ms, target, params) -> None:
    up = _live_brokers(c)
    for b in up:
        c.power_loss(b)
    _restart_later(c, [broker_node(b) for b in up], ms)


def _partition(c, rng, ms, target, params) -> None:
    nodes = _nodes(c)
    if "side" in params:  # one side chosen by the caller (a Hypothesis draw); the rest is the other
        side = sorted(params["side"])
        c.partition(side, sorted(set(nodes) - set(side)))
    else:
        shuffled = rng.sample(nodes, len(nodes))
        cut = rng.randint(1, len(nodes) - 1)
        c.partition(shuffled[:cut], shuffled[cut:])
    _heal_later(c, ms)


def _isolate(c, rng, ms, target, params) -> None:
    c.isolate(target if target is not None else rng.choice(_nodes(c)))
    _heal_later(c, ms)


def _cut(c, rng, ms, target, params) -> None:
    """Replication to `target` cut from its `peers` (default: every other broker), data
    plane, both ways; or (plane=control) every controller's requests to `target`, one way."""
    target = target if target is not None else broker_node(rng.choice(c.broker_ids))
    if params.get("plane", "data") == "control":
        for x in c.controller_ids:
            c.cut(controller_node(x), target, both_ways=False, planes=(CONTROL_PLANE,))
    else:
        for b in params.get("peers", c.broker_ids):
            if broker_node(b) != target:
                c.cut(target, broker_node(b), both_ways=True, planes=(DATA_PLANE,))
    if ms is not None:
        _heal_later(c, ms)


def _pause(c, rng, ms, target, params) -> None:
    c.pause(target if target is not None else rng.choice(_nodes(c)), ms)


def _drop(c, rng, ms, target, params) -> None:
    c.lossy_network(drop=_draw("drop", "rate", rng, params))
    _heal_later(c, ms)


def _duplicate(c, rng, ms, target, params) -> None:
    rate = params.get("rate", FAULTS["duplicate"].param("rate").default)  # (not drawn: saved runs)
    reorder = params["reorder"] if "reorder" in params else rng.random() < 0.5
    c.lossy_network(duplicate=rate, reorder=reorder)
    _heal_later(c, ms)


def _reorder(c, rng, ms, target, params) -> None:
    c.lossy_network(reorder=True, stall_ms=_draw("reorder", "stall_ms", rng, params))
    _heal_later(c, ms)


def _late(c, rng, ms, target, params) -> None:
    c.lossy_network(duplicate=_draw("late", "rate", rng, params), late_ms=_draw("late", "late_ms", rng, params))
    _heal_later(c, ms)


def _clock(c, rng, ms, target, params) -> None:
    node = target if target is not None else rng.choice(_nodes(c))
    c.clock_jump(node, _draw("clock", "jump_ms", rng, params))


def _application(kind: str) -> Callable:
    def go(c, rng, ms, target, params) -> None:
        if kind not in c.applications:
            raise ValueError(f"a {kind} fault needs {NEEDS[FAULTS[kind].needs]}: this run has none")
        c.applications[kind](**{p.name: params[p.name] for p in FAULTS[kind].params if p.name in params})
    return go


_INJECT: dict[str, Callable] = {
    "crash": _crash_or_power(False), "power": _crash_or_power(True), "blackout": _blackout,
    "partition": _partition, "isolate": _isolate, "cut": _cut, "pause": _pause, "drop": _drop,
    "duplicate": _duplicate, "reorder": _reorder, "late": _late, "clock": _clock,
    **{k: _application(k) for k, f in FAULTS.items() if f.layer in ("application", "operator")},
}
assert set(_INJECT) == set(FAULTS), "every fault kind has an injector"


# -- fixed schedules (verify's translations, the catalogue's, steered runs) -----------------

# Older files name a cut follower by why it was cut: "lag" (to leave the ISR), "behind"
# (to lack a record while staying in it).
_ALIASES = {"lag": "cut", "behind": "cut"}


def apply_fixed(c, schedule, tp) -> None:
    """Inject a fixed schedule: (at ms, kind, replica[, value]) steps, where replica i names
    the i-th replica of `tp` (its preferred leader first), looked up when the step happens
    (-1: no node, or the controller for isolate and pause), and value is the kind's
    first parameter (rate, jump_ms, stall_ms; a pause's length; a cut's plane). Every kind
    lasts until the schedule ends it: crash, power and blackout with a "restart" of the
    replica (or of all, -1), network kinds with a "heal" (of every link and loss, -1, or
    only of that replica's links) - except a "drop" without a value, which
    loses 30% of messages for 4 s (enough for a producer to retry; older files have it).
    "none" does nothing."""

    def node_of(replica: int) -> str:
        if replica < 0:
            return controller_node(c.controller_ids[0])
        return broker_node(c.state(tp).replicas[replica])

    def step(kind: str, replica: int, value) -> None:
        kind = _ALIASES.get(kind, kind)
        if kind == "restart":
            for node in sorted(c.down) if replica < 0 else [node_of(replica)]:
                if node in c.down and node.startswith(("broker-", "controller-")):
                    c.restart(node)
        elif kind == "heal":
            c.heal(None if replica < 0 else node_of(replica))
        elif kind == "drop" and value is None:
            inject(c, "drop", c.rng, 4000, rate=0.3)
        elif kind == "pause":
            inject(c, kind, c.rng, value or FAULTS[kind].param("ms").default, node_of(replica))
        elif kind in FAULTS:
            first = FAULTS[kind].params[0].name if FAULTS[kind].params else None
            params = {first: value} if first and value is not None else {}
            target = node_of(replica) if FAULTS[kind].aimed else None
            inject(c, kind, c.rng, None, target, peers=c.state(tp).replicas, **params)

    for at, kind, replica, *value in schedule:
        c.at(at, lambda kind=kind, replica=replica, value=(value or [None])[0]: step(kind, replica, value))


def most_down(schedule, replicas: int = 3) -> int:
    """The most brokers a fixed schedule has down at once (a blackout: all of them;
    a restart of -1 brings all back)."""
    down: set[int] = set()
    most = 0
    for _, kind, replica, *_ in sorted(schedule, key=lambda step: step[0]):
        kind = _ALIASES.get(kind, kind)
        if kind == "restart":
            down = set() if replica < 0 else down - {replica}
        elif kind in FAULTS and FAULTS[kind].takes_down:
            down |= set(range(replicas)) if replica < 0 or not FAULTS[kind].aimed else {replica}
        most = max(most, len(down))
    return most


def fixed_kinds(schedule) -> list[str]:
    """The vocabulary's kinds a fixed schedule injects."""
    return sorted({_ALIASES.get(step[1], step[1]) for step in schedule} & set(FAULTS))
