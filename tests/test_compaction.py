"""Log compaction on the simulated disk, as a Hypothesis stateful test: appends of a few
keys (tombstones among them), time passing, cleaner passes, crashes in the middle of a
pass (the process dies after any disk operation, with or without a power loss) and
restarts - after every step, Kafka's compaction guarantees (properties/compaction.py).
Two mutations, each caught: a cleaner that ignores delete.retention.ms, and a recovery
that throws a finished swap away."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch
from kafkaproof.impl.storage import Log, LogConfig, SimDisk
from kafkaproof.impl.storage import cleaner as cleaner_module
from kafkaproof.impl.storage import log as log_module
from kafkaproof.impl.storage.cleaner import clean
from kafkaproof.impl.storage.disk import DiskError
from kafkaproof.properties.compaction import check_compaction

DIR = "compacted-0"
RETENTION = 1000  # delete.retention.ms
KEYS = [b"a", b"b", b"c", b"d"]


class Crash(DiskError):
    """The process died here."""


class CrashingDisk:
    """The simulated disk, dying after `budget` more writes (create, append, truncate,
    fsync, delete, rename): the cleaner stops wherever that falls."""

    WRITES = {"create", "append", "truncate", "fsync", "delete", "rename"}

    def __init__(self, inner: SimDisk, budget: int) -> None:
        self.inner, self.budget = inner, budget

    def __getattr__(self, name):
        op = getattr(self.inner, name)
        if name not in self.WRITES:
            return op

        def counted(*args):
            if self.budget <= 0:
                raise Crash(f"crashed before {name}{args[:1]}")
            self.budget -= 1
            return op(*args)

        return counted


def config(retention_in_cleaner: int = RETENTION) -> LogConfig:
    return LogConfig(segment_bytes=260, cleanup_policy=("compact",), delete_retention_ms=retention_in_cleaner)


def stored(log: Log) -> list[tuple[int, bytes | None, bytes | None]]:
    return [(r.offset, r.key, r.value) for b in log.iter_batches() for r in b.records]


class CompactionMachine(RuleBasedStateMachine):
    retention_in_cleaner = RETENTION  # a mutation lowers it
    stats: Counter

    def __init__(self) -> None:
        super().__init__()
        self.disk = SimDisk()
        self.rng = random.Random(0)
        self.log = Log.open(self.disk, DIR, config(self.retention_in_cleaner))
        self.now = 0
        self.written: list[tuple[int, bytes | None, bytes | None, int]] = []
        self.reach = 0  # the highest offset any pass could clean below

    @rule(keys=st.lists(st.sampled_from(KEYS), min_size=1, max_size=3), tombstone=st.booleans())
    def append(self, keys, tombstone):
        values = [None if tombstone and i == len(keys) - 1 else f"{k.decode()}@{self.now}".encode()
                  for i, k in enumerate(keys)]
        info = self.log.append_as_leader(encode_batch([SimpleRecord(v, key=k, timestamp=self.now)
                                                      for k, v in zip(keys, values, strict=True)]), 0, self.now)
        self.written += [(info.first_offset + i, k, v, self.now) for i, (k, v) in enumerate(zip(keys, values,
                                                                                             strict=True))]
        self.stats["tombstones"] += tombstone

    @rule(ms=st.integers(1, 700))
    def tick(self, ms):
        self.now += ms

    @rule()
    def clean(self):
        self._pass(self.log)

    def _pass(self, log: Log) -> None:
        result = clean(log, self.now, upto=log.log_end_offset)
        if result is not None:
            self.reach = max(self.reach, result.first_dirty)
            self.stats["records removed"] += result.removed

    @rule(budget=st.integers(0, 14), power_loss=st.booleans())
    def crash_while_cleaning(self, budget, power_loss):
        flushed = self.log.recovery_point
        reach_before = min(self.log.active.base_offset, self.log.recovery_point)
        self.log._disk = CrashingDisk(self.disk, budget)
        try:
            self._pass(self.log)
        except Crash:
            self.stats["crash mid-clean"] += 1
            self.reach = max(self.reach, reach_before)  # (it may have cleaned part of it)
        if power_loss:
            self.disk.power_loss(self.rng)
            self.stats["power loss"] += 1
        self.log = Log.open(self.disk, DIR, config(self.retention_in_cleaner), recovery_point=flushed,
                            now_ms=self.now)
        self.stats["swaps completed"] += len(self.log.last_recovery.completed_swaps)
        # A power loss takes what was never fsynced: the log's matter, not the cleaner's
        # (tests/test_log_stateful.py) - and never anything below the recovery point.
        assert self.log.log_end_offset >= flushed
        self.written = [w for w in self.written if w[0] < self.log.log_end_offset]

    @rule()
    def null_key_is_refused(self):
        with pytest.raises(KafkaError) as err:
            self.log.append_as_leader(encode_batch([SimpleRecord(b"v", key=None)]), 0, self.now)
        assert err.value.code == ErrorCode.INVALID_RECORD

    @invariant()
    def compaction_guarantees_hold(self):
        violations = check_compaction(self.written, stored(self.log), self.now, RETENTION, self.reach)
        assert violations == [], [str(v) for v in violations]


def run(machine: type[CompactionMachine], examples: int | None = None) -> Counter:
    """The profile's examples (60 in CI, 2,000 nightly); a mutation's run stops at the
    first failure, unshrunk."""
    stats: Counter = Counter()
    machine.stats = stats
    chosen = settings(settings.default, stateful_step_count=60) if examples is None else \
        settings(settings.default, max_examples=examples, stateful_step_count=60,
                 phases=[Phase.explicit, Phase.reuse, Phase.generate])
    run_state_machine_as_test(machine, settings=chosen)
    return stats


def test_compaction_keeps_its_guarantees_through_crashes_while_cleaning():
    stats = run(CompactionMachine)
    # Not vacuous: the cleaner removed records, tombstones went, passes died half way
    # and recovery finished what had been fsynced.
    for what in ("records removed", "tombstones", "crash mid-clean", "swaps completed", "power loss"):
        assert stats[what] > 0, (what, dict(stats))


def test_mutation_a_tombstone_dropped_early_is_caught():
    class Hasty(CompactionMachine):
        retention_in_cleaner = 0  # the cleaner ignores delete.retention.ms

    with pytest.raises(AssertionError, match="compaction-tombstone-early"):
        run(Hasty, 200)


def test_mutation_a_finished_swap_thrown_away_is_caught(monkeypatch):
    def discard(disk, dir, base):  # recovery deletes the swap, as it does the other leftovers
        disk.delete(f"{dir}/{base:020d}.log{cleaner_module.SWAP}")

    monkeypatch.setattr(log_module, "complete_swap", discard)
    with pytest.raises(AssertionError, match="compaction-(head|latest)-lost|compaction-offset"):
        run(CompactionMachine, 200)
