"""The campaigns: named rows - cluster configurations (CONFIGS), consumer groups' commit
strategies (GROUP_CONFIGS) and transaction protocols (TXN_CONFIGS) - run through
Hypothesis-drawn schedules on the engine's run (impl/engine/hypothesis_runs.py): the same
run function, checkers and invariants as check, hunt and replay. What a row must keep is
not written here: callers pass the verifier's claims (kafkaproof/claims.py) as
`must_hold`, and may pass steering schedules (kafkaproof/guided.steering).
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from kafkaproof.impl.engine.hypothesis_runs import run_examples
from kafkaproof.impl.engine.setup import Setup
from kafkaproof.impl.engine.shrink import shrink
from kafkaproof.impl.sim import faults
from kafkaproof.impl.sim.dangers import relevant as relevant_dangers

# The kinds the campaign draws (the vocabulary's defaults, and isolated leaders or controllers).
FAULTS = faults.BY_DEFAULT + ("isolate",)
WITHOUT_POWER_LOSS = tuple(f for f in FAULTS if f != "power")
# Shorter than Kafka's defaults so that ISR changes, retries and timeouts happen within
# a short run; the verifier reads none of them.
COMMON_BROKER = {"replica.lag.time.max.ms": "3000"}
COMMON_PRODUCER = {"request.timeout.ms": "2000", "delivery.timeout.ms": "20000"}
COMMON_CONSUMER = {"request.timeout.ms": "5000"}
SECONDS = 20


class Row(NamedTuple):
    broker: dict
    producer: dict
    faults: tuple[str, ...]  # the kinds its runs draw from (its failure model)
    strategy: str | None = None  # a consumer group application with this commit strategy
    consumer: dict = {}
    seconds: int = SECONDS
    faults_per_run: tuple[int, int] = (1, 5)  # how few and how many a drawn schedule has

    def setup(self) -> Setup:
        return Setup(broker={**COMMON_BROKER, **self.broker}, producer={**COMMON_PRODUCER, **self.producer},
                     consumer={**COMMON_CONSUMER, **self.consumer}, faults=tuple(self.faults), seconds=self.seconds,
                     strategy=self.strategy)


# "safe" is Kafka's advice (acks=all, min.insync.replicas=2, idempotence) with Kafka's
# default flush policy, judged under crashes; "safe+power-loss" the same under power
# losses too, kept by KIP-966's eligible leader replicas (Kafka 4.1's default); under
# 3.x's elections ("safe+power-loss-3.x") the ISR may shrink to the leader, which then
# loses power and is still elected; "safe-fsync" fsyncs every message.
SAFE = {"min.insync.replicas": "2"}
IDEMPOTENT = {"acks": "all", "enable.idempotence": "true"}
CONFIGS = {
    "safe": Row(SAFE, IDEMPOTENT, WITHOUT_POWER_LOSS),
    "safe-fsync": Row({**SAFE, "log.flush.interval.messages": "1"}, IDEMPOTENT, FAULTS),
    "safe+power-loss": Row(SAFE, IDEMPOTENT, FAULTS),
    "safe+power-loss-3.x": Row({**SAFE, "eligible.leader.replicas.enable": "false"}, IDEMPOTENT, FAULTS),
    "acks=1": Row({"min.insync.replicas": "1"}, {"acks": "1"}, FAULTS),
    "acks=0": Row({"min.insync.replicas": "1"}, {"acks": "0"}, FAULTS),
    "unclean": Row({"min.insync.replicas": "1", "unclean.leader.election.enable": "true"}, {"acks": "all"}, FAULTS),
    "no-idempotence": Row({"min.insync.replicas": "2"},
                          {"acks": "all", "enable.idempotence": "false", "request.timeout.ms": "300"}, FAULTS),
}


# Consumer groups: an application group per commit strategy and assignor, its members
# crashing, leaving, stalling past max.poll.interval.ms and pausing past their session
# (impl/engine/run.py), brokers - the coordinator among them - crashing. Timeouts short
# enough for rebalances to finish within a run (the broker's smallest session timeout).
GROUP_BROKER = {"min.insync.replicas": "2", "offsets.topic.num.partitions": "3",
                "group.initial.rebalance.delay.ms": "0"}
GROUP_CONSUMER = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000", "max.poll.interval.ms": "5000",
                  "metadata.max.age.ms": "2000"}
GROUP_FAULTS = ("crash",) + faults.of_application("group", layers=("application",))
APPLICATION_FAULTS = (4, 8)  # an application's faults are many and short: more per run


def _group(strategy: str, assignor: str, faults=GROUP_FAULTS) -> Row:
    return Row(GROUP_BROKER, {}, faults, strategy, {**GROUP_CONSUMER, "partition.assignment.strategy": assignor}, 30,
               APPLICATION_FAULTS)


GROUP_CONFIGS = {
    "commit-after": _group("after", "cooperative-sticky"),
    "commit-after-eager": _group("after", "range"),
    "commit-before": _group("before", "sticky"),
    "auto-commit": _group("auto", "range"),
    "auto-commit-async": _group("auto-async", "roundrobin"),
    # The topic grows while the group works: partitions reach the members through their
    # metadata (metadata.max.age.ms), and the group rebalances onto them.
    "commit-after+growth": _group("after", "cooperative-sticky", ("crash",) + faults.of_application("group")),
}

# Transactions: two transactional producer applications and an exactly-once
# consume-transform-produce group, with KIP-890 (the default) and without it.
TXN_BROKER = {**GROUP_BROKER, "transaction.state.log.num.partitions": "3"}
TXN_PRODUCER = {"transactional.id": "txn", "transaction.timeout.ms": "10000", "request.timeout.ms": "5000"}
TXN_FAULTS = ("crash",) + faults.of_application("transactions", layers=("network", "application")) + ("member",)
TXN_CONFIGS = {
    "kip890": Row(TXN_BROKER, TXN_PRODUCER, TXN_FAULTS, "transactional", GROUP_CONSUMER,
                  faults_per_run=APPLICATION_FAULTS),
    "legacy-kip890": Row({**TXN_BROKER, "legacy.transactions.without.kip890": "true"}, TXN_PRODUCER, TXN_FAULTS,
                         "transactional", GROUP_CONSUMER, faults_per_run=APPLICATION_FAULTS),
}


def campaign(name: str, row: Row, examples: int, must_hold=(), templates=(), derandomize: bool | None = None,
             executor=None, collect: list | None = None) -> Counter:
    """`examples` Hypothesis runs of the row; fails on the first run violating a guarantee
    of `must_hold` (naming its seed and schedule, which replay with run_one); returns the
    runs, faults by kind and violations by guarantee. `collect`: receives (setup, result)
    of every run, its stats filled (a report)."""

    def judge(setup: Setup, seed: int, result) -> None:
        if collect is not None:
            collect.append((setup, result))
        broken = [g for g in must_hold if result.violations.get(g)]
        if broken:  # shrunk by the engine's one shrinker, then named so that run_one replays it
            small, shown, _ = shrink(setup, result, broken[0], budget_s=15)
            v = shown.violations[broken[0]][0]
            raise AssertionError(f"[{name}] {broken[0]} violated ({v['name']}: {v['detail']}); replay it:"
                                 f" run_one({small!r}, {seed})")

    return run_examples(row.setup(), examples, templates, on_run=judge, derandomize=derandomize,
                        faults=row.faults_per_run, executor=executor, stats=collect is not None)


def guarantee_table(examples: int, guarantees, rows: dict[str, Row] | None = None,
                    templates: dict[str, list] | None = None, executor=None,
                    collect: dict[str, list] | None = None) -> dict[str, dict[str, int]]:
    """For each row: how many of `examples` runs violated each guarantee, the runs, the
    faults injected, and per guarantee the danger events the runs reached ("reached").
    `collect`: row name -> its runs' (setup, result), stats filled (a report)."""
    table = {}
    for name, row in (CONFIGS if rows is None else rows).items():
        runs = collect.setdefault(name, []) if collect is not None else None
        stats = campaign(name, row, examples, templates=(templates or {}).get(name, ()), derandomize=True,
                         executor=executor, collect=runs)
        table[name] = {**{g: stats[f"violated:{g}"] for g in guarantees}, "runs": stats["runs"],
                       "faults": stats["faults"],
                       "reached": {g: {d: stats[f"danger:{d}"] for d in relevant_dangers(g)} for g in guarantees}}
    return table
