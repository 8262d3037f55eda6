"""The counterexample catalogue: one shrunk counterexample per unsafe choice.

`kafkaproof catalogue` hunts each entry and saves it under counterexamples/ (replacing
that entry's previous file); tests/test_catalogue.py replays every saved file and checks
that the recorded fix removes the violation on the same seed.
"""

from __future__ import annotations

import pathlib

from kafkaproof.check import build_setup
from kafkaproof.counterexample import save
from kafkaproof.hunt import hunt

# (entry name, guarantee, --set overrides, fault kinds or None for all, commit strategy)
ENTRIES = [
    ("acks-1-leader-failure", "durability", ["acks=1"], "crash,partition,drop"),
    # replica.lag.time.max.ms=3000: the ISR must shrink within a short run for an unclean
    # election (or a stale HW) to matter; Kafka's 30 s default needs longer runs.
    ("unclean-leader-election", "durability", ["unclean.leader.election.enable=true", "min.insync.replicas=1",
                                               "replica.lag.time.max.ms=3000"], "crash,partition,drop"),
    ("acks-0-fire-and-forget", "durability", ["acks=0"], "crash,partition,drop"),
    ("replication-factor-1", "durability", ["default.replication.factor=1"], "power"),
    ("commit-before-processing", "consumer-no-loss", [], "crash,member", "before"),
    ("auto-commit-crash-redelivers", "consumer-no-duplicates", [], "member", "auto"),
    ("retries-without-idempotence", "exactly-once", ["enable.idempotence=false"], "drop,duplicate,partition"),
    ("reordering-without-idempotence", "partition-order", ["enable.idempotence=false"], "drop,partition"),
    # Jepsen's Bufstream report / KAFKA-17754: a transaction marker that arrives late ends
    # the producer's next transaction, which KIP-890's epoch bump per transaction prevents.
    ("late-marker-before-kip890", "transactions", ["transactional.id=app", "legacy.transactions.without.kip890=true"],
     "late"),
]


def build(directory: str | pathlib.Path = "counterexamples", budget_s: float = 120,
          only: list[str] | None = None, log=print) -> list[pathlib.Path]:
    out = []
    directory = pathlib.Path(directory)
    for name, guarantee, sets, faults, *strategy in ENTRIES:
        if only and name not in only:
            continue
        setup = build_setup(sets=sets, faults=faults, strategy=strategy[0] if strategy else None)
        h = hunt(setup, guarantee, budget_s)
        if not h.found:
            log(f"{name}: no {guarantee} violation within {budget_s:.0f} s ({h.seeds_tried} runs)")
            continue
        for old in directory.glob(f"{name}--*.json"):
            old.unlink()
        path = save(directory, h.setup, h.result, guarantee)
        named = path.with_name(f"{name}--{path.name}")
        path.rename(named)
        log(f"{name}: {h.result.violations[guarantee][0]['name']} at seed {h.result.seed}, shrunk to"
            f" {h.shrunk_size} -> {named}")
        out.append(named)
    return out
