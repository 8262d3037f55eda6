"""`kafkaproof verify`: what does this configuration guarantee - proved, or broken with a
schedule the implementation replays?

Each guarantee is a z3 query over the symbolic model (model/symbolic.py) with the
configuration fixed to the user's: UNSAT at every depth up to the bound K is PROVED for
every run of at most K steps (availability: for runs of any length, since it is a
condition on the set of failed brokers); SAT is VIOLATED, with the shortest schedule; a
solver timeout is UNKNOWN. Every VIOLATED is then translated into a simulator fault
schedule and run on the implementation (impl/) on a few seeds: reproduced, it is saved
as a counterexample file (`kafkaproof replay` re-executes it); not reproduced, it is
reported as a model/implementation discrepancy, with both traces.

`synthesize` searches the configurations themselves (counterexample-guided): z3 proposes
the cheapest configuration not yet refuted (fewest replicas, then the cheapest acks and
flush policy), the verifier checks it, and each refutation is blocked on the settings
its model reads, until one PROVES every requested guarantee.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from functools import lru_cache

import z3

from kafkaproof import reach
from kafkaproof.impl.broker.config import BrokerConfig, check_topic_fits
from kafkaproof.impl.client.config import ConsumerConfig, ProducerConfig
from kafkaproof.impl.engine import Setup, run_one
from kafkaproof.impl.engine.setup import seconds_after, steered
from kafkaproof.impl.sim.dangers import DANGERS
from kafkaproof.impl.sim.faults import FAULTS, REDELIVERING, FailureModel, covered, fixed_kinds
from kafkaproof.model.symbolic import (
    GUARANTEES,
    MODELS,
    STRATEGIES,
    Config,
    Step,
    availability_bad,
    build,
)

PROVED, VIOLATED, UNKNOWN = "PROVED", "VIOLATED", "UNKNOWN"
INDUCTION_DEPTH = 4  # k-induction is tried up to this k (deeper ones have not closed where shallow ones failed)
# What each model reads of the configuration (synthesis blocks a refuted candidate on these).
READS = {"partition": ("acks", "rf", "min_isr", "unclean", "flush"),
         "producer": ("acks", "idempotence", "retries", "in_flight"),
         "consumer": ("strategy",), "availability": ("acks", "rf", "min_isr"), "isolation": ("read_committed",)}


@dataclass
class Verdict:
    guarantee: str
    status: str
    proof: str
    seconds: float
    trace: list[Step] = field(default_factory=list)
    model: str = ""  # which model's trace (partition, producer, consumer, availability)
    variant: str = ""  # the explorer's variant (model/replication.py) when model is "explorer"
    confirmed: bool | None = None  # VIOLATED: did the implementation show it?
    confirmation: str = ""
    counterexample: str | None = None


def values_of(setup: Setup) -> dict:
    """The model's view of a configuration (and a clear error for a contradictory one)."""
    broker = BrokerConfig.from_properties(setup.broker)
    producer = ProducerConfig.from_properties(setup.producer)
    consumer = ConsumerConfig.from_properties(setup.consumer)
    rf = setup.replication_factor  # as `check` runs it
    check_topic_fits(rf, broker.min_insync_replicas)
    auto = setup.consumer.get("enable.auto.commit", "true").strip().lower() == "true"
    strategy = setup.strategy or ("auto" if auto else "after")
    # A strategy the consumer model lacks (commitAsync) is left out: only that model reads
    # it, and judge() answers its guarantees UNKNOWN first.
    return {"acks": producer.acks, "rf": rf, "min_isr": broker.min_insync_replicas,
            "unclean": broker.unclean_leader_election, "flush": broker.log.flush_interval_messages == 1,
            "idempotence": producer.idempotence, "retries": producer.retries,
            "in_flight": producer.max_in_flight, "read_committed": consumer.isolation_level == "read_committed",
            **({"strategy": STRATEGIES.index(strategy)} if strategy in STRATEGIES else {}),
            # (only when on: without it every query is the formula it was before KIP-966)
            **({"elr": True} if broker.eligible_leader_replicas else {})}


def _fix(cfg: Config, values: dict) -> list:
    return [getattr(cfg, k) == v for k, v in values.items()]


def check(guarantee: str, values: dict, brokers: int = 3, failures: int = 1, bound: int = 10,
          power_loss: bool = False, timeout_s: float = 60, duplicates: bool = False) -> Verdict:
    """One guarantee of one configuration. A query's answer depends only on its arguments:
    asked again (check, the claims, the agreement table, a derived guarantee), it is
    answered from memory - a copy, since confirm() writes into a verdict."""
    v = _check(guarantee, tuple(sorted(values.items())), brokers, failures, bound, power_loss, timeout_s, duplicates)
    return replace(v, trace=list(v.trace))


def fresh_z3_context() -> None:
    """Every query starts from a new z3 context. In the shared default one, which trace z3
    returns depends on what the process asked before (terms accumulate), so `check` in a
    process that had verified other configurations first steered its runs by other
    schedules than in a fresh one - an entry point's history leaking into a run."""
    z3.z3._main_ctx = None  # z3.main_ctx() makes a new one on next use


@lru_cache(maxsize=1024)
def _check(guarantee: str, items: tuple, brokers: int, failures: int, bound: int, power_loss: bool,
           timeout_s: float, duplicates: bool) -> Verdict:
    values = dict(items)
    start = time.perf_counter()
    fresh_z3_context()
    cfg = Config()
    solver = z3.Solver()
    solver.set(timeout=int(timeout_s * 1000))
    solver.add(*cfg.domain(brokers), *_fix(cfg, values))
    if guarantee == "availability":
        solver.add(availability_bad(cfg, brokers, failures))
        result = solver.check()
        seconds = time.perf_counter() - start
        if result == z3.unsat:
            acks = {0: "0", 1: "1", -1: "all"}[values["acks"]]
            return Verdict(guarantee, PROVED, f"runs of any length: {failures} of {values['rf']} replicas down,"
                                              f" acks={acks} writes still succeed", seconds)
        if result == z3.sat:
            trace = [Step("crash", r, {}) for r in range(min(failures, values["rf"]))]
            return Verdict(guarantee, VIOLATED, f"with {failures} replica(s) down, fewer live replicas than"
                                                " min.insync.replicas: acks=all writes fail", seconds, trace,
                           model="availability")
        return Verdict(guarantee, UNKNOWN, f"solver gave up after {seconds:.1f} s", seconds)
    model = build(MODELS[guarantee], cfg, bound, brokers, failures, power_loss, duplicates, values.get("elr", False))
    solver.add(model.constraints())
    for k in range(bound + 1):  # the shortest violation first
        solver.push()
        solver.add(model.bad(guarantee, model.states[k]))
        result = solver.check()
        if result == z3.sat:
            trace = model.trace(solver.model(), model.states, k)
            solver.pop()
            return Verdict(guarantee, VIOLATED, f"in {len(trace)} steps", time.perf_counter() - start, trace,
                           model=MODELS[guarantee])
        solver.pop()
        if result == z3.unknown:
            seconds = time.perf_counter() - start
            return Verdict(guarantee, UNKNOWN, f"solver gave up at depth {k} after {seconds:.1f} s", seconds)
    if guarantee == "delivery":
        # Retries hide every transient error, but only until delivery.timeout.ms (120 s by
        # default): a fault outlasting it fails the send whatever `retries` says, and the
        # model has no clock.
        return Verdict(guarantee, UNKNOWN, "no send fails for good within the model, but the producer gives up after"
                                           " delivery.timeout.ms, which no model reads: a longer fault fails sends",
                       time.perf_counter() - start)
    if guarantee == "partition-order" and values["acks"] != 0:
        # Acknowledged offsets also go backwards when an acknowledged write is lost: the
        # producer's later sends reuse its offset (what the checker sees). Found by the
        # cross-check with simulation (acks=1, retries=0). (acks=0 acknowledges no offset.)
        lost = check("read-your-writes", values, brokers, failures, bound, power_loss, timeout_s, duplicates)
        if lost.status != PROVED:
            return replace(lost, guarantee=guarantee, proof=f"{lost.proof}, via a lost acknowledged write whose"
                                                            " offset later sends reuse",
                           seconds=time.perf_counter() - start)
    if guarantee == "exactly-once" and values["acks"] != 0 and values["retries"] > 0:
        # The producer model keeps the broker's log: a record consumers read that the
        # partition then loses, resent by a producer whose answer was lost, is read twice
        # (found by the agreement test: power loss without fsync, idempotence on).
        lost = check("monotonic-reads", values, brokers, failures, bound, power_loss, timeout_s, duplicates)
        if lost.status != PROVED:
            return replace(lost, guarantee=guarantee, proof=f"{lost.proof}, via a record read and then lost, which"
                                                            " the producer resends after a lost answer",
                           seconds=time.perf_counter() - start)
    k = _induction_depth(guarantee, values, brokers, failures, bound, power_loss, timeout_s, duplicates)
    if k is not None:
        return Verdict(guarantee, PROVED, f"runs of any length (k-induction, k={k}; bounded check to {bound} steps"
                                          " found no violation)", time.perf_counter() - start)
    failure_kind = "crashes or power losses" if power_loss else "crashes"
    if values.get("elr"):
        failure_kind += "; one that shut down uncleanly counts until it is back in the ISR, KIP-966's bound"
    scope = (f"bounded: every run of <= {bound} steps, {brokers} brokers, replication factor {values['rf']},"
             f" <= {failures} replica(s) down at once ({failure_kind})") \
        if MODELS[guarantee] == "partition" or guarantee == "partition-order" else f"bounded: every run of <= {bound} steps"
    return Verdict(guarantee, PROVED, scope, time.perf_counter() - start)


def _induction_depth(guarantee: str, values: dict, brokers: int, failures: int, bound: int, power_loss: bool,
                     timeout_s: float, duplicates: bool = False) -> int | None:
    """The smallest k <= bound for which k-induction closes: from ANY state (reachable or
    not), k steps without a violation cannot be followed by one. With the bounded check
    from the initial state (the base case) this proves the guarantee for runs of any
    length. None when no k closes (the model's unreachable states get in the way)."""
    def holds(model, s):  # the property, strengthened by the model's auxiliary invariants
        return z3.And(z3.Not(model.bad(guarantee, s)), *model.aux(s))

    # The auxiliary invariants must hold in every reachable state up to the bound (the base
    # case; without any, the caller's bounded check already was it).
    cfg = Config()
    model = build(MODELS[guarantee], cfg, bound, brokers, failures, power_loss, duplicates, values.get("elr", False))
    if any(model.aux(s) for s in model.states):
        base = z3.Solver()
        base.set(timeout=int(timeout_s * 1000))
        base.add(*cfg.domain(brokers), *_fix(cfg, values), *model.constraints())
        base.add(z3.Or(*[z3.Not(holds(model, s)) for s in model.states]))
        if base.check() != z3.unsat:
            return None
    for k in range(1, min(bound, INDUCTION_DEPTH) + 1):
        cfg = Config()
        solver = z3.Solver()
        solver.set(timeout=int(timeout_s * 1000))
        model = build(MODELS[guarantee], cfg, k, brokers, failures, power_loss, duplicates, values.get("elr", False))
        solver.add(*cfg.domain(brokers), *_fix(cfg, values), *model.transitions())
        solver.add(*[holds(model, model.states[i]) for i in range(k)])
        solver.add(z3.Not(holds(model, model.states[k])))
        if solver.check() == z3.unsat:
            return k
    return None


# -- confirming a violation on the implementation ------------------------------------------------

FAULT_OF = {"crash": "crash", "power-loss": "power", "restart": "restart", "shrink-isr": "cut"}
RECORDED_AS = {"crash": "crash", "power": "power-loss", "restart": "restart", "cut": "cut"}  # the history's names


def model_trace(verdict: Verdict) -> list[dict]:
    """The model's steps for a counterexample file: action, target, the state after it, and
    for a step the schedule translates, the fault it becomes in the run's history."""
    return [{"action": s.action, "target": s.target, "state": json.dumps(s.state, sort_keys=True, default=str)[:240],
             **({"fault": RECORDED_AS[FAULT_OF[s.action]]} if s.action in FAULT_OF else {})}
            for s in verdict.trace]


def to_schedule(verdict: Verdict, rf: int, lag_ms: int = 3000, session_ms: int = 9000,
                lossy: bool = False) -> tuple[tuple[int, str, int], ...]:
    """The model's faults as a fixed simulator schedule (impl/sim/faults.apply_fixed), from
    3 s on; what the model lets happen by itself (appends, replication, elections) the
    simulator does by itself. `lag_ms`, `session_ms`: the configuration's
    replica.lag.time.max.ms and broker.session.timeout.ms; `lossy`: the failure model
    loses messages (drop), so a lost answer the model assumes can be laid out too."""
    if verdict.model == "explorer":
        return _explorer_schedule(verdict, lag_ms, session_ms)
    if verdict.model == "txn-explorer":  # a marker delivered again, late (KIP-890's case)
        return DANGERS["txn-marker-late"].schedule(lag_ms, session_ms)
    if verdict.model == "consumer":  # a member crash at the moment the trace has it
        return _member_schedule(verdict)
    if verdict.model == "availability":  # replicas down for good (judged on a long single failure)
        return tuple((3000, "crash", step.target) for step in verdict.trace)
    if verdict.model == "producer":
        if any(s.action == "network-duplicate" for s in verdict.trace):  # the network delivers twice
            return ((3000, "duplicate", -1, 0.2), (8000, "heal", -1))
        if verdict.guarantee == "delivery":  # a refused request: the leader's process is gone
            return DANGERS["produce-attempt-failed"].schedule(lag_ms, session_ms)
        return DANGERS["produce-retried-after-lost-answer"].schedule(lag_ms, session_ms)  # lost answers: retries
    # The model's followers are interchangeable: name them in the order the trace first
    # touches them, so traces that differ only by which follower went first are one schedule
    # (z3 returns either; two would split the steered runs between copies of one scenario).
    named = list(dict.fromkeys(s.target for s in verdict.trace if s.action in FAULT_OF and s.target))
    followers = named + [r for r in range(1, max(rf, len(named) + 1)) if r not in named]
    relabel = {old: new for new, old in enumerate(followers, start=1)}
    faults = [(FAULT_OF[s.action], relabel.get(s.target, s.target)) for s in verdict.trace if s.action in FAULT_OF]
    # Followers that lack the record when the guarantee breaks fell behind before it: cut
    # their replication just before the first fault (or right away), staying in the ISR.
    last = verdict.trace[-1].state if verdict.trace else {}
    behind = sorted((2000, "cut", relabel.get(r, r)) for r, has in enumerate(last.get("has", []))
                    if 0 < r < rf and not has)
    timed, at = [], 3000
    if any(s.action == "ack-without-answer" for s in verdict.trace) and not last.get("appended", True):
        timed.append((1000, "drop", -1))  # acks=0: the request itself was lost on the way
    for kind, target in faults:
        if lossy and verdict.guarantee == "exactly-once" and FAULTS[kind].takes_down:
            # Exactly-once's derived case (see check): the resent record's answer was lost.
            # A leader answers as it appends, so only the network loses that answer: let the
            # shrunk ISR take writes for 3 s, drop some messages across the loss (4 s from
            # 1.5 s before it), and the producer resends after its request timeout.
            at += 3000
            timed.append((at - 1500, "drop", -1))
            lossy = False
        timed.append((at, kind, target))
        # A cut-off follower leaves the ISR only after replica.lag.time.max.ms and the
        # leader's next ISR check (every second): let writes happen in the smaller ISR
        # before what follows.
        at += lag_ms + 2000 if kind == "cut" else 1000
    if behind or any(kind == "cut" for kind, _ in faults):
        timed.append((at + lag_ms, "heal", -1))  # cut replication resumes only after the last fault
    return tuple(behind + timed) or ((1000, "none", 0),)


# The consumer model's step a crash follows -> the moment a member crash waits for
# (impl/sim/faults.py: the member kind's "moment").
CRASH_MOMENT = {"process": "processed", "commit": "committed"}


def _member_schedule(verdict: Verdict) -> tuple[tuple, ...]:
    """One crash of a member that owns partitions, waiting from 3 s on for the moment the
    trace crashes it at (right after processing, or right after committing)."""
    actions = [s.action for s in verdict.trace if s.action != "stutter"]
    crash = actions.index("crash-restart")
    return ((3000, "member", -1, CRASH_MOMENT.get(actions[crash - 1] if crash else "", "any")),)


def unfenced(verdict: Verdict) -> bool:
    """An explorer's trace of a variant without KIP-320's fencing (kip101, kip279): it turns
    on a replica serving one of another leader epoch (the stale-epoch-served danger)."""
    return verdict.model == "explorer" and verdict.variant in ("kip101", "kip279")


def _explorer_schedule(verdict: Verdict, lag_ms: int, session_ms: int) -> tuple[tuple, ...]:
    """The explorer's trace as a schedule.

    Pre-KIP-101's shape - two depositions, leader 0 then the leader elected after it, 1,
    ending in the election of a follower that truncated in between to its stale high
    watermark: in the simulator a deposition is a crash; restarting replica 0 before its
    session expires makes the controller move leadership to 1 at once (a re-registration),
    replica 2 follows 1 and truncates, and 1 crashing at that moment leaves 2 nothing to
    fetch back before it is elected.

    KIP-279's and KIP-320's shapes (variants kip101, kip279) turn on a replica serving one
    of another leader epoch - an epoch query answered by a leader that never had the
    epoch, a fetch counted from a follower's divergent log - which only KIP-320's fencing
    refuses. The explorer's controller gets there by deposing live leaders while keeping
    them in the ISR, which Kafka's controller does only for preferred elections; the
    simulator gets there through crashes and a follower that misses the leader changes
    (the stale-epoch-served danger's schedule)."""
    if unfenced(verdict):
        return DANGERS["stale-epoch-served"].schedule(lag_ms, session_ms)
    actions = [s.action for s in verdict.trace]
    elected = [int(a.split("(")[1].split(")")[0]) for a in actions if a.startswith("ControllerElectLeader(")]
    truncated = [int(a.split("(")[1].split(",")[0]) for a in actions if a.startswith("BecomeFollowerAndTruncate(")]
    if len(elected) != 2 or elected[-1] not in truncated or elected[0] == elected[-1]:
        return ()
    back = min(2000, session_ms // 2)  # before the controller fences it: a re-registration
    return ((3000, "crash", 0), (3000 + back, "restart", 0), (3000 + back, "crash", 1),
            (3000 + back + session_ms + 6000, "restart", 1))


def confirm(verdict: Verdict, setup: Setup, seeds: int = 8, out: str | None = "counterexamples") -> None:
    """Run the translated schedule on the implementation; save what reproduces."""
    from kafkaproof.counterexample import save

    if verdict.guarantee == "availability":
        verdict.confirmed, verdict.confirmation = _confirm_availability(setup, len(verdict.trace))
        return
    broker_config = BrokerConfig.from_properties(setup.broker)
    if verdict.model == "explorer" and not to_schedule(verdict, 0, broker_config.replica_lag_time_max_ms,
                                                       broker_config.session_timeout_ms):
        verdict.confirmation = ("not replayed on the implementation: this shape of the explorer's trace is not yet"
                                " translated into a simulator schedule (`kafkaproof hunt` searches for one)")
        return
    judged = verdict.guarantee
    if verdict.model == "consumer":
        strategy = STRATEGIES[values_of(setup)["strategy"]]
        schedule = to_schedule(verdict, 0)
        setup = replace(setup, faults=("member",), schedule=schedule, strategy=strategy,
                        seconds=max(setup.seconds, seconds_after(setup, schedule)))
    elif verdict.model == "isolation":
        # Transactional producers that sometimes abort; readers with the configured level.
        level = "read_committed" if values_of(setup)["read_committed"] else "read_uncommitted"
        setup = replace(setup, producer={"transactional.id": "app", **setup.producer},
                        consumer={**setup.consumer, "isolation.level": level}, faults=("crash",), schedule=())
        judged = "transactions"  # its G1a: a poll returned an aborted transaction's record
    else:
        # A short replica.lag.time.max.ms lets a cut-off follower leave the ISR within the
        # run (the explorer's schedules run as configured, laid out for its lag time).
        broker = setup.broker if verdict.model == "explorer" else {"replica.lag.time.max.ms": "3000", **setup.broker}
        schedule = to_schedule(verdict, values_of(setup)["rf"],
                               BrokerConfig.from_properties(broker).replica_lag_time_max_ms,
                               broker_config.session_timeout_ms, lossy="drop" in setup.faults)
        # (z3's translations cut a follower that merely lags; the explorer's may need what
        # the failure model excludes, and then it does not replay)
        outside = sorted(set(fixed_kinds(schedule)) - covered(setup.faults)) if verdict.model == "explorer" else []
        if outside:
            verdict.confirmation = (f"not replayed on the implementation: its translation {list(schedule)} needs"
                                    f" {', '.join(outside)}, outside this failure model")
            return
        setup = replace(setup, broker=broker, schedule=schedule,
                        seconds=max(setup.seconds, 20, seconds_after(setup, schedule)))
    for seed in range(seeds):
        # The explorer's schedules need the timing spread steered runs have (their windows
        # depend on how far producers got): each seed lays the schedule out as check does.
        run = steered(setup, setup.schedule, seed) if verdict.model == "explorer" else setup
        result = run_one(run, seed, keep_history=True)
        if result.violations.get(judged):
            name = result.violations[judged][0]["name"]
            verdict.confirmed = True
            verdict.confirmation = f"reproduced on the implementation (seed {seed}: {name})"
            if out is not None:
                verdict.counterexample = str(save(out, run, result, judged, model_trace=model_trace(verdict)))
            return
    verdict.confirmed = False
    verdict.confirmation = (f"NOT reproduced on the implementation in {seeds} seeds of the translated schedule"
                            f" {list(setup.schedule) or setup.faults}: a model/implementation discrepancy")


def _confirm_availability(setup: Setup, down: int) -> tuple[bool, str]:
    from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
    from kafkaproof.impl.sim.cluster import Cluster

    rf = setup.replication_factor
    c = Cluster(seed=0, broker_props=setup.broker)
    c.create_topic("t", 1, rf)
    replicas = c.state(TopicPartition("t", 0)).replicas
    for b in replicas[:down]:
        c.crash(broker_node(b))
    c.run_for(15_000)
    p = c.producer("p", {**setup.producer, "delivery.timeout.ms": "20000", "request.timeout.ms": "5000"})
    for i in range(5):
        p.send("t", None, b"v%d" % i)
    c.run_for(30_000)
    acked = len(c.history.completions("send", "ok"))
    if acked == 0:
        return True, (f"reproduced on the implementation: with brokers {list(replicas[:down])} down, none of 5"
                      " acks=all sends succeeded")
    return False, f"NOT reproduced: {acked} of 5 sends succeeded with {down} replica(s) down"


# -- synthesis ---------------------------------------------------------------------------------


def synthesize(guarantees: list[str], brokers: int = 3, failures: int = 1, bound: int = 10,
               power_loss: bool = False, timeout_s: float = 60, log=None, duplicates: bool = False,
               allow_fsync: bool = False, elr: bool = False) -> tuple[dict | None, list[dict]]:
    """The cheapest configuration that PROVES `guarantees` and availability together.
    Kafka's flush policy (never fsync: durability comes from replication) stays unless
    `allow_fsync`; `elr`: eligible.leader.replicas.enable, as the setup has it (the same
    answer verify gives for the configuration found). Returns (its values or None, the
    refuted candidates with why)."""
    wanted = list(dict.fromkeys(list(guarantees) + ["availability"]))
    fresh_z3_context()  # (its terms keep their context while check() starts new ones)
    cfg = Config()
    opt = z3.Optimize()
    opt.add(*cfg.domain(brokers), cfg.retries <= 1, cfg.in_flight <= 5)
    if not allow_fsync:
        opt.add(z3.Not(cfg.flush))
    # Cost, most important first: replicas; acks (0 < 1 < all: waiting for more copies);
    # fsync on every message; min.insync.replicas; then the rest.
    opt.minimize(cfg.rf)
    opt.minimize(z3.If(cfg.acks == 0, 0, z3.If(cfg.acks == 1, 1, 2)))
    opt.minimize(z3.If(cfg.flush, 1, 0))
    opt.minimize(cfg.min_isr)
    opt.minimize(z3.If(cfg.unclean, 0, 1))
    opt.minimize(z3.If(cfg.retries == 0, 1, 0))  # a producer that never retries drops writes on any error
    opt.minimize(z3.If(cfg.idempotence, 1, 0))
    opt.minimize(cfg.strategy)
    refuted = []
    while opt.check() == z3.sat:
        m = opt.model()
        values = {name: _value(m, getattr(cfg, name)) for name in
                  ("acks", "rf", "min_isr", "unclean", "flush", "idempotence", "retries", "in_flight", "strategy",
                   "read_committed")} | ({"elr": True} if elr else {})
        failed = None
        for g in wanted:
            v = check(g, values, brokers, failures, bound, power_loss, timeout_s, duplicates)
            if v.status != PROVED:
                failed = (g, v)
                break
        if failed is None:
            return values, refuted
        g, v = failed
        refuted.append({"candidate": describe(values), "fails": g, "status": v.status})
        if log is not None:
            log(f"  {describe(values)}: {g} {v.status}")
        reads = READS["availability" if g == "availability" else MODELS[g]]
        if g == "partition-order":  # (also a lost write's reused offset: the partition model)
            reads = tuple(dict.fromkeys(reads + READS["partition"]))
        opt.add(z3.Not(z3.And(*[getattr(cfg, k) == values[k] for k in reads])))
    return None, refuted


def _value(m: z3.ModelRef, var):
    v = m.eval(var, model_completion=True)
    return z3.is_true(v) if z3.is_bool(v) else v.as_long()


def describe(values: dict) -> str:
    acks = {0: "0", 1: "1", -1: "all"}[values["acks"]]
    return (f"replication.factor={values['rf']} min.insync.replicas={values['min_isr']} acks={acks}"
            f" unclean.leader.election.enable={str(values['unclean']).lower()}"
            f" log.flush.interval.messages={'1' if values['flush'] else 'default'}"
            f" enable.idempotence={str(values['idempotence']).lower()} retries={values['retries']}"
            f" max.in.flight={values['in_flight']} commit={STRATEGIES[values['strategy']] if 'strategy' in values else 'not modelled'}"
            f" isolation.level={'read_committed' if values.get('read_committed') else 'read_uncommitted'}"
            f" eligible.leader.replicas.enable={str(bool(values.get('elr'))).lower()}")


__all__ = ["GUARANTEES", "PROVED", "UNKNOWN", "VIOLATED", "Verdict", "check", "confirm", "judge", "synthesize",
           "values_of"]


# -- cross-check against simulation ----------------------------------------------------------------

SIM_FAULTS = "crash,partition,drop"  # the cross-check's failure model (crashes; lag from the network)


def within(verdict: Verdict, model: FailureModel) -> Verdict:
    """A proof covers only what its model reads: under a failure model with kinds no
    symbolic model has, a PROVED is UNKNOWN, naming them (never a silent PROVED)."""
    if verdict.status != PROVED or not model.unmodelled:
        return verdict
    return replace(verdict, status=UNKNOWN, proof=f"not modelled: {', '.join(model.unmodelled)} (without them:"
                                                  f" {verdict.proof})")


def judge(guarantee: str, setup: Setup, failures: int = 1, brokers: int = 3, bound: int = 10,
          timeout_s: float = 60) -> Verdict:
    """verify's answer for one guarantee of a setup, under the setup's failure model: the
    symbolic check, then whatever the models do not reach turns a PROVED into UNKNOWN,
    naming it - settings a model assumes (kafkaproof/reach.py; for the legacy replication
    switches the explorer answers instead, `explored`) and fault kinds no model has
    (`within`). verify, check's "verify says", the claims and the demo all ask this."""
    model = failure_model(setup, failures)
    if guarantee == "transactions":
        return _transactions(setup)
    values = values_of(setup)
    if MODELS.get(guarantee) == "consumer" and "strategy" not in values:
        return Verdict(guarantee, UNKNOWN, f"not modelled: the consumer model has no commit strategy"
                                           f" {setup.strategy}", 0.0)
    opts = {"brokers": brokers, "failures": failures, "bound": bound, "power_loss": model.power_loss,
            "timeout_s": timeout_s, "duplicates": model.duplicates}
    v = check(guarantee, values, **opts)
    if v.status == PROVED and guarantee == "consumer-no-duplicates":
        lost = _commits_lost(setup, values, opts)
        if lost is not None:
            v = replace(v, status=UNKNOWN, proof=f"commits may be lost: __consumer_offsets {lost.proof}, and a lost"
                                                 " commit replays processed records (the consumer model assumes"
                                                 f" commits survive; with them: {v.proof})")
    settings = setup.settings()
    missing = reach.unmodelled(settings, guarantee)
    protections = reach.unmodelled_protections(settings, guarantee)
    if v.status == VIOLATED and protections:
        v = replace(v, status=UNKNOWN, trace=[], proof=f"not modelled: {'; '.join(protections)} - a protection the"
                                                          f" model lacks, so its violation may not happen (without it:"
                                                          f" {v.proof})")
    if v.status == PROVED and missing:
        v = explored(guarantee, missing, settings, values, model, brokers) or \
            replace(v, status=UNKNOWN, proof=f"not modelled: {'; '.join(missing)} (without them: {v.proof})")
    return within(v, model)


def _transactions(setup: Setup) -> Verdict:
    """Transactions (G1a, torn or lost transactions) by the explorer of model/transactions.py:
    one producer's two-phase commit against late duplicate markers, with and without
    KIP-890. VIOLATED with its shortest trace, or UNKNOWN: it abstracts replication (each
    partition is one log), so what it finds no trace for is still durability's to lose."""
    from kafkaproof.model.explore import explore
    from kafkaproof.model.transactions import TxnBounds, TxnModel

    start = time.perf_counter()
    if not setup.producer.get("transactional.id"):
        return Verdict("transactions", UNKNOWN, "no transactional producer (transactional.id): nothing to judge", 0.0)
    kip890 = not BrokerConfig.from_properties(setup.broker).legacy_transactions_without_kip890
    late = any(k in setup.faults for k in REDELIVERING)
    bounds = TxnBounds(kip890=kip890, duplicates=1 if late else 0)
    result = explore(TxnModel(bounds))
    scope = (f"the explorer (model/transactions.py, {'with' if kip890 else 'without'} KIP-890: {bounds.partitions}"
             f" partitions, {bounds.transactions} transactions, {bounds.duplicates} late duplicate marker(s))")
    if result.holds:
        return Verdict("transactions", UNKNOWN, f"{scope} finds no violation; it abstracts replication (each partition"
                                                " one log), so records lost by the partition are durability's",
                       time.perf_counter() - start)
    actions = [a for a, _ in result.trace[1:]]
    return Verdict("transactions", VIOLATED, f"by {scope} in {len(actions)} steps: {result.detail}",
                   time.perf_counter() - start, [Step(a, None, {}) for a in actions], model="txn-explorer")


# The legacy replication switches z3's partition model does not carry, and the variant of
# the explicit-state replication model (model/replication.py) that has each - weakest first.
EXPLORER_VARIANTS = (("legacy.truncate.to.high.watermark", "legacy-hw"), ("legacy.kip101.without.kip279", "kip101"),
                     ("legacy.no.fetch.epoch.fencing", "kip279"))
EXPLORER_MAX_STATES = 200_000


def explored(guarantee: str, missing: list[str], settings: dict, values: dict, model: FailureModel,
             brokers: int) -> Verdict | None:
    """The explorer as the back end of a partition guarantee under a legacy switch: its
    shortest trace to a leader without an acknowledged record (LeaderCompleteness), or
    None (no such switch, another of the `missing` settings - reach.unmodelled - or no
    violation within its bounds)."""
    from kafkaproof.model.replication import Bounds

    if guarantee not in reach.PARTITION or values["acks"] != -1:
        return None
    on = [variant for key, variant in EXPLORER_VARIANTS if (settings.get(key) or "").strip().lower() == "true"]
    others = [m for m in missing if not any(m.startswith(key + "=") for key, _ in EXPLORER_VARIANTS)]
    if not on or others:
        return None
    start = time.perf_counter()
    bounds = Bounds(replicas=min(values["rf"], brokers), records=2, max_epoch=3, unclean=values["unclean"],
                    power_loss=model.power_loss and not values["flush"], min_isr=values["min_isr"])
    found = _explore(on[0], bounds)
    if found is None:
        return None
    actions, detail = found
    return Verdict(guarantee, VIOLATED, f"by the explorer (model/replication.py, variant {on[0]}: {bounds.replicas}"
                                        f" replicas, {bounds.records} records, epochs <= {bounds.max_epoch}) in"
                                        f" {len(actions)} steps: {detail}", time.perf_counter() - start,
                   [Step(a, None, {}) for a in actions], model="explorer", variant=on[0])


@lru_cache(maxsize=32)
def _explore(variant: str, bounds) -> tuple[tuple[str, ...], str] | None:
    """The shortest trace to a leader without an acknowledged record (once per variant
    and bounds: durability, read-your-writes and monotonic-reads ask the same)."""
    from kafkaproof.model.explore import explore, restrict
    from kafkaproof.model.replication import Model

    result = explore(restrict(Model(variant, bounds), {"LeaderCompleteness"}), symmetry=True,
                     max_states=EXPLORER_MAX_STATES)
    return None if result.holds else (tuple(a for a, _ in result.trace[1:]), result.detail)


def _commits_lost(setup: Setup, values: dict, opts: dict) -> Verdict | None:
    """The durability of __consumer_offsets (written acks=all, its replication factor
    capped at the brokers as the cluster creates it), when it is not PROVED."""
    broker = BrokerConfig.from_properties(setup.broker)
    rf = min(broker.offsets_topic_replication_factor, opts["brokers"])
    offsets = {**values, "acks": -1, "rf": rf, "min_isr": min(values["min_isr"], rf)}
    v = check("durability", offsets, **opts)
    return None if v.status == PROVED else replace(v, proof=f"(replication factor {rf}) can lose a write: {v.proof}")


def failure_model(setup: Setup, failures: int) -> FailureModel:
    """The failure model `verify` judges under: the setup's fault kinds (the same option
    and default as check's) that the symbolic models read (FaultKind.symbolic), the others
    named as not modelled; `failures` brokers down at once."""
    modelled = [k for k in setup.faults if FAULTS[k].symbolic]
    return FailureModel.of(modelled, failures, setup.broker,
                           unmodelled=[k for k in setup.faults if k not in modelled])


def grid() -> list[list[str]]:
    """Configurations (as --set lists) over the symbolic parameters: 240 of them."""
    producers = [["acks=all", "enable.idempotence=true"]]
    for acks in ("all", "1"):
        for retries in ("0", "2147483647"):
            for in_flight in ("1", "5"):
                producers.append([f"acks={acks}", "enable.idempotence=false", f"retries={retries}",
                                  f"max.in.flight.requests.per.connection={in_flight}"])
    producers.append(["acks=0", "enable.idempotence=false"])
    out = []
    for rf in (1, 2, 3):
        for min_isr in range(1, rf + 1):
            for unclean in ("false", "true"):
                for flush in (None, "1"):
                    for producer in producers:
                        sets = [f"default.replication.factor={rf}", f"min.insync.replicas={min_isr}",
                                f"unclean.leader.election.enable={unclean}", *producer]
                        out.append(sets + ([f"log.flush.interval.messages={flush}"] if flush else []))
    return out


def cross_check(sets: list[str], guarantees: list[str], runs: int = 4, executor=None, **opts) -> list[str]:
    """Disagreements between the verifier and the implementation for one configuration:
    a VIOLATED the implementation does not reproduce, or a PROVED one a random-fault
    campaign (the same failure model) breaks. Empty when they agree."""
    from kafkaproof.impl.engine import build_setup, run_check

    setup = build_setup(sets=sets, faults=SIM_FAULTS, seconds=20)
    values = values_of(setup)
    verdicts = [check(g, values, **opts) for g in guarantees]
    problems = []
    for v in verdicts:
        if v.status == VIOLATED and v.model not in ("availability", "consumer"):
            confirm(v, setup, out=None)
            if not v.confirmed:
                problems.append(f"{' '.join(sets)}: {v.guarantee} VIOLATED in the model, {v.confirmation}")
    proved = [v.guarantee for v in verdicts if v.status == PROVED and v.guarantee in SIM_JUDGED]
    if proved:
        for r in run_check(setup, runs, seed=0, executor=executor):
            for g in proved:
                if r.violations.get(g):
                    problems.append(f"{' '.join(sets)}: {g} PROVED, but simulation seed {r.seed} shows"
                                    f" {r.violations[g][0]['name']}: {r.violations[g][0]['detail']}")
    return problems


# The guarantees a plain `check` run judges (the consumer ones need an application).
SIM_JUDGED = ("durability", "read-your-writes", "monotonic-reads", "exactly-once", "partition-order")
