"""The log against a plain list model, through appends, reads, truncation, rolls,
retention, clean restarts, process crashes and power losses, on both backends.

The model is a list of batches (base offset, values) plus `durable`: the offset
below which the model says data is fsynced. It is derived from Kafka's flush rules
(flush policy, flush at roll, fsynced truncation, fsync after recovery), never read
from the log, so after a power loss the recovered log must equal the model's
durable prefix exactly: no fsynced record lost, no unfsynced record kept.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections import Counter

import pytest
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from kafkaproof.impl.protocol.errors import KafkaError
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch
from kafkaproof.impl.storage import Log, LogConfig, RealDisk, SimDisk
from kafkaproof.impl.storage.config import LONG_MAX

DIR = "t-0"
STATS: Counter = Counter()  # faults and operations actually exercised, across examples


class LogMachine(RuleBasedStateMachine):
    backend = "sim"

    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.mkdtemp(prefix="kafkaproof-") if self.backend == "real" else None
        self.disk = SimDisk() if self.tmp is None else RealDisk(self.tmp)
        self.batches: list[tuple[int, list[bytes]]] = []
        self.start = 0
        self.durable = 0
        self.epochs: list[tuple[int, int]] = []
        self.epoch = 0
        self.counter = 0

    def teardown(self) -> None:
        if self.tmp:
            self.disk.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- swarm: each example picks its own configuration ---------------------------------

    @initialize(
        segment_bytes=st.sampled_from([150, 400, 4096]),  # 150: some batches are too large
        flush_messages=st.sampled_from([LONG_MAX, 1, 4]),
        index_interval=st.sampled_from([0, 100, 4096]),
        retention_bytes=st.sampled_from([-1, 300, 900]),
        seed=st.integers(0, 2**16),
    )
    def setup(self, segment_bytes, flush_messages, index_interval, retention_bytes, seed):
        self.config = LogConfig(segment_bytes=segment_bytes, flush_interval_messages=flush_messages,
                                index_interval_bytes=index_interval, retention_bytes=retention_bytes)
        self.rng = random.Random(seed)
        self.log = Log.open(self.disk, DIR, self.config)

    # -- model helpers --------------------------------------------------------------------

    @property
    def leo(self) -> int:
        return self.batches[-1][0] + len(self.batches[-1][1]) if self.batches else self.start

    def model_values_from(self, offset: int) -> list[bytes]:
        return [v for base, vals in self.batches for i, v in enumerate(vals) if base + i >= offset]

    def keep_below(self, end: int) -> None:
        """Drop batches that reach `end` (whole batches, as the log truncates)."""
        self.batches = [(b, v) for b, v in self.batches if b + len(v) <= end]
        self.epochs = [(e, o) for e, o in self.epochs if o < self.leo]

    def reopen(self, recovery_point: int) -> None:
        self.log = Log.open(self.disk, DIR, self.config, recovery_point=recovery_point)
        self.durable = self.leo  # recovery fsyncs what it validated; a clean close did already

    # -- rules ----------------------------------------------------------------------------

    # Appends come in bursts so that logs grow past segment and retention sizes between
    # faults (Hypothesis picks rules uniformly; one batch per step would keep logs tiny).
    @rule(burst=st.lists(st.tuples(st.integers(1, 3), st.integers(1, 60)), min_size=1, max_size=6))
    def append(self, burst):
        for n, size in burst:
            self.append_one(n, size)

    def append_one(self, n: int, size: int) -> None:
        vals = []
        for _ in range(n):
            self.counter += 1
            vals.append(f"{self.counter}:".encode() + b"x" * size)
        raw = encode_batch([SimpleRecord(v) for v in vals])
        if len(raw) > self.config.segment_bytes:  # refused whole, nothing written
            with pytest.raises(KafkaError, match="RECORD_LIST_TOO_LARGE"):
                self.log.append_as_leader(raw, self.epoch)
            return
        active_before = self.log.active.base_offset
        info = self.log.append_as_leader(raw, self.epoch)
        assert (info.first_offset, info.last_offset) == (self.leo, self.leo + n - 1)
        if self.log.active.base_offset != active_before:
            self.durable = self.leo  # a roll flushes everything before the new segment
            STATS["roll"] += 1
        if not self.epochs or self.epochs[-1][0] != self.epoch:
            self.epochs.append((self.epoch, self.leo))
        self.batches.append((self.leo, vals))
        if self.leo - self.durable >= self.config.flush_interval_messages:
            self.durable = self.leo
        STATS["append"] += 1

    @rule()
    def new_leader_epoch(self):
        self.epoch += 1

    @rule(data=st.data())
    def read(self, data):
        offset = data.draw(st.integers(self.start, self.leo))
        max_bytes = data.draw(st.sampled_from([1, 200, 1 << 20]))
        got = [r.value for r in self.log.read_records(offset, max_bytes=max_bytes)]
        expected = self.model_values_from(offset)
        assert got == expected[: len(got)]
        if offset < self.leo:
            assert got, "a read below the log end returns at least one record (KIP-74)"
        # where the same read lies on disk (what a real broker sends with sendfile)
        # names exactly those bytes, on a disk with files
        region = self.log.read(offset, max_bytes, region=True)
        if hasattr(region, "path"):
            assert region.read() == self.log.read(offset, max_bytes)
            STATS["region"] += 1
        STATS["read"] += 1

    @precondition(lambda self: self.leo > self.start)
    @rule(data=st.data())
    def truncate(self, data):
        target = data.draw(st.integers(self.start, self.leo - 1))
        self.log.truncate_to(target)
        self.keep_below(target)
        self.durable = self.leo  # the cut is fsynced, which flushes the active segment
        STATS["truncate"] += 1

    @rule()
    def roll(self):
        self.log.roll()
        self.durable = self.leo

    @rule()
    def flush(self):
        self.log.flush()
        self.durable = self.leo

    @rule()
    def retention(self):
        deleted = self.log.delete_old_segments(now_ms=0)
        new_start = self.log.log_start_offset
        assert all(b + len(v) <= new_start or b >= new_start for b, v in self.batches), \
            "retention deletes whole segments, so the new start is a batch boundary"
        if deleted:
            assert self.config.retention_bytes >= 0
            STATS["retention"] += 1
        self.batches = [(b, v) for b, v in self.batches if b >= new_start]
        self.start = new_start
        if self.epochs:
            older = [(e, o) for e, o in self.epochs if o <= new_start]
            if older:
                self.epochs = [(older[-1][0], new_start)] + [(e, o) for e, o in self.epochs if o > new_start]
        self.durable = max(self.durable, new_start)

    @rule()
    def clean_restart(self):
        self.log.close()
        self.reopen(self.log.recovery_point)
        assert self.log.last_recovery.truncations == []
        STATS["clean_restart"] += 1

    @rule(use_checkpoint=st.booleans())
    def process_crash(self, use_checkpoint):
        # The process dies: objects are gone, the page cache (SimDisk data, OS files) stays.
        recovery_point = self.log.recovery_point if use_checkpoint else 0
        if self.tmp:
            self.disk.close()  # closing descriptors does not fsync
            self.disk = RealDisk(self.tmp)
        self.reopen(recovery_point)
        assert self.log.last_recovery.truncations == [], "nothing is torn by a process crash"
        STATS["process_crash"] += 1

    @precondition(lambda self: self.backend == "sim")
    @rule(use_checkpoint=st.booleans())
    def power_loss(self, use_checkpoint):
        recovery_point = self.log.recovery_point if use_checkpoint else 0
        self.disk.power_loss(self.rng)
        self.keep_below(self.durable)
        self.reopen(recovery_point)
        if self.log.last_recovery.truncations:
            STATS["torn_write_recovered"] += 1
            event("power loss tore a write")
        STATS["power_loss"] += 1

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def matches_model(self):
        if not hasattr(self, "log"):
            return
        assert self.log.log_start_offset == self.start
        assert self.log.log_end_offset == self.leo
        assert self.log.epochs.entries == self.epochs
        bases = [s.base_offset for s in self.log.segments]
        assert bases == sorted(set(bases))
        self.log.active.index.check(self.log.active.size)


class RealLogMachine(LogMachine):
    backend = "real"


SETTINGS = settings(stateful_step_count=40, max_examples=max(settings().max_examples, 120))


def _run(machine, **overrides):
    STATS.clear()
    run_state_machine_as_test(machine, settings=settings(SETTINGS, **overrides))


def test_log_matches_model_on_sim_disk():
    _run(LogMachine)
    # A property test that never faulted proves nothing.
    for what in ("power_loss", "torn_write_recovered", "process_crash", "clean_restart",
                 "truncate", "retention", "roll"):
        assert STATS[what] > 0, f"no {what} was exercised: {dict(STATS)}"


def test_log_matches_model_on_real_disk():
    _run(RealLogMachine, max_examples=25)
    for what in ("process_crash", "clean_restart", "truncate", "roll", "region"):
        assert STATS[what] > 0, f"no {what} was exercised: {dict(STATS)}"


# --- mutations: each breaks the implementation in one place; the machine must notice ----


def _mutated(monkeypatch, target, name, replacement):
    """Apply one mutation; the model check (not some crash in the test) must fail."""
    monkeypatch.setattr(target, name, replacement)
    with pytest.raises(Exception) as exc:
        _run(LogMachine, phases=[Phase.generate])  # finding it is enough; no shrinking
    found = exc.value.exceptions if isinstance(exc.value, ExceptionGroup) else [exc.value]
    assert any(isinstance(e, (AssertionError, KafkaError)) for e in found), found


def test_mutation_flush_without_fsync_is_caught(monkeypatch):
    from kafkaproof.impl.storage.segment import LogSegment

    _mutated(monkeypatch, LogSegment, "flush", lambda self: None)


def test_mutation_recovery_without_crc_check_is_caught(monkeypatch):
    import kafkaproof.impl.storage.segment as segment
    from kafkaproof.impl.protocol.records import parse_header

    # Recovery trusts any batch whose header parses: a torn tail is kept.
    _mutated(monkeypatch, segment, "check_batch", lambda raw, pos=0: parse_header(raw, pos))


def test_mutation_truncate_keeps_the_batch_holding_the_target_is_caught(monkeypatch):
    from kafkaproof.impl.storage.segment import LogSegment

    original = LogSegment.truncate_to
    _mutated(monkeypatch, LogSegment, "truncate_to", lambda self, offset: original(self, offset + 1))
