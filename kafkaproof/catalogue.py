"""The counterexample catalogue: one shrunk counterexample per unsafe choice.

`kafkaproof catalogue` hunts each entry and saves it under counterexamples/ (replacing
that entry's previous file); tests/test_catalogue.py replays every saved file and checks
that the recorded fix removes the violation on the same seed.
"""

from __future__ import annotations

import pathlib
import tempfile
from dataclasses import replace
from typing import NamedTuple

from kafkaproof.counterexample import save
from kafkaproof.hunt import hunt, steering
from kafkaproof.impl.engine import build_setup


class Entry(NamedTuple):
    name: str
    guarantee: str
    sets: list[str]
    faults: str  # fault kinds, comma-separated
    strategy: str | None = None  # a consumer group application's commit strategy
    schedule: tuple = ()  # a fixed fault schedule instead of random faults (check.Setup)


ENTRIES = [Entry(*e) for e in [
    ("acks-1-leader-failure", "durability", ["acks=1"], "crash,partition,drop"),
    # Only the unsafe setting: the ISR must shrink before an unclean election matters, and
    # verify's schedule (laid out for Kafka's 30 s replica.lag.time.max.ms) steers there.
    ("unclean-leader-election", "durability", ["unclean.leader.election.enable=true"], "crash,partition,drop"),
    ("acks-0-fire-and-forget", "durability", ["acks=0"], "crash,partition,drop"),
    ("retries-0-transient-error", "delivery", ["retries=0"], "crash,partition,drop"),
    # Kafka's default: acks=all waits for the ISR, and an ISR of the leader alone will do.
    ("min-insync-replicas-1", "durability", ["min.insync.replicas=1", "replica.lag.time.max.ms=3000"],
     "power,partition"),
    # KIP-966's hazard: min.insync.replicas=2 does not save acks=all writes once the ISR has
    # shrunk to the leader and it loses power; eligible leader replicas (Kafka 4.1) do.
    ("last-replica-standing-without-elr", "durability", ["default.replication.factor=3", "min.insync.replicas=2",
                                                         "eligible.leader.replicas.enable=false"],
     "crash,partition,drop,power"),
    # Replication instead of fsync assumes the replicas do not all fail together.
    ("all-replicas-power-loss", "durability", ["min.insync.replicas=2"], "blackout"),
    # KIP-101: a follower that truncates to its own high watermark when it follows a new
    # leader can lose a committed record. Only the unsafe setting: the hunt is steered by
    # the explorer's trace (verify.to_schedule), no tuned lag time.
    ("truncate-to-high-watermark", "durability", ["legacy.truncate.to.high.watermark=true"], "crash"),
    # KIP-279 and KIP-320: without fetch epochs a leader counts a follower that missed the
    # leader changes, its log diverging below the high watermark. Only the unsafe setting:
    # the explorer's trace steers (verify._explorer_schedule; a `cut` is a partition).
    ("kip101-without-kip279", "durability", ["legacy.kip101.without.kip279=true"], "crash,partition"),
    ("fetch-without-epoch-fencing", "durability", ["legacy.no.fetch.epoch.fencing=true"], "crash,partition"),
    ("replication-factor-1", "durability", ["default.replication.factor=1"], "power"),
    # Only member crashes: verify's consumer trace (poll, commit, crash) steers one to the
    # moment right after a commit, before processing (the member fault's "moment").
    ("commit-before-processing", "consumer-no-loss", [], "member", "before"),
    ("auto-commit-crash-redelivers", "consumer-no-duplicates", [], "member", "auto"),
    # Kafka auto-commits at the next poll the position the previous poll returned: records
    # handed to a worker are committed before they are processed. (Untuned since member
    # crashes come at a random phase: a fixed 4 s period fell in step with the 5 s commits.)
    ("auto-commit-async-processing", "consumer-no-loss", [], "member", "auto-async"),
    # commitAsync does not retry (a retry could commit an older offset over a newer one):
    # a failed commit and a crash redeliver everything since the last one that worked.
    ("commit-async-without-retry", "consumer-no-duplicates", [], "member,drop", "async"),
    ("retries-without-idempotence", "exactly-once", ["enable.idempotence=false"], "drop,duplicate,partition"),
    ("reordering-without-idempotence", "partition-order", ["enable.idempotence=false"], "drop,partition"),
    # Jepsen's Bufstream report / KAFKA-17754: a transaction marker that arrives late ends
    # the producer's next transaction, which KIP-890's epoch bump per transaction prevents.
    ("late-marker-before-kip890", "transactions", ["transactional.id=app", "legacy.transactions.without.kip890=true"],
     "late"),
    # One broker down for good: with min.insync.replicas = replication.factor no acks=all
    # write succeeds until it is back (a fixed schedule: random faults restart too soon).
    ("replication-factor-equals-min-isr", "availability", ["min.insync.replicas=3"], "crash", None,
     ((5000, "crash", 1),)),
]]


def build(directory: str | pathlib.Path = "counterexamples", budget_s: float = 120,
          only: list[str] | None = None, log=print, executor=None) -> list[pathlib.Path]:
    out = []
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, guarantee, sets, faults, strategy, schedule in ENTRIES:
        if only and name not in only:
            continue
        setup = replace(build_setup(sets=sets, faults=faults, strategy=strategy), schedule=schedule)
        h = hunt(setup, guarantee, budget_s, steer=steering(setup, guarantee), executor=executor)
        if not h.found:
            log(f"{name}: no {guarantee} violation within {budget_s:.0f} s ({h.seeds_tried} runs)")
            continue
        for old in directory.glob(f"{name}--*.json"):
            old.unlink()
        with tempfile.TemporaryDirectory(dir=directory) as fresh:  # (not a file of the same signature)
            path = save(fresh, h.setup, h.result, guarantee)
            named = directory / f"{name}--{path.name}"
            path.rename(named)
        log(f"{name}: {h.result.violations[guarantee][0]['name']} at seed {h.result.seed}, shrunk to"
            f" {h.shrunk_size} -> {named}")
        out.append(named)
    return out
