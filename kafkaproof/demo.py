"""`make demo` / `kafkaproof demo`: what a single broker's log keeps through crashes.

The foundation demo: the same appends, then a process crash, a power loss, or a bit
flip, under different flush policies. It shows the premise everything else in
kafkaproof tests: with Kafka's defaults an acknowledged write is *not* on disk, so
durability has to come from replication.
"""

from __future__ import annotations

import random
import tempfile

from rich.console import Console
from rich.table import Table

from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.workload import Workload, run_workload, settle
from kafkaproof.impl.storage import Log, LogConfig, RealDisk, SimDisk
from kafkaproof.impl.storage.dump import dump_segment
from kafkaproof.properties.durability import check_durability

RECORDS = 1000
SEGMENT_BYTES = 32 * 1024


def _fill(disk, config: LogConfig) -> Log:
    log = Log.open(disk, "orders-0", config)
    for i in range(RECORDS):
        rec = SimpleRecord(value=f"order-{i:04d}".encode(), key=f"customer-{i % 7}".encode(), timestamp=i)
        log.append_as_leader(encode_batch([rec]), leader_epoch=0, now_ms=i)
    return log


def _after_fault(fault: str, flush_messages: int, seed: int) -> tuple[int, int, list[str]]:
    """(records lost, fsyncs paid, recovery report lines) for one fault under one policy."""
    disk = SimDisk()
    config = LogConfig(segment_bytes=SEGMENT_BYTES, flush_interval_messages=flush_messages)
    log = _fill(disk, config)
    rng = random.Random(seed)
    recovery_point = log.recovery_point  # what a checkpoint would have recorded
    if fault == "power loss":
        disk.power_loss(rng)
    elif fault == "bit flip":
        seg = log.segments[len(log.segments) // 2]
        disk.corrupt(seg.log_path, seg.size // 2, seg.size // 2 + 1, rng)
        recovery_point = 0  # a full scan, as after an unclean shutdown with no checkpoint
    fsyncs = disk.fsyncs
    reopened = Log.open(disk, "orders-0", config, recovery_point=recovery_point)
    kept = reopened.log_end_offset - reopened.log_start_offset
    return RECORDS - kept, fsyncs, reopened.last_recovery.lines()


FAULTS = ("process crash", "power loss", "bit flip")


def run(console: Console | None = None) -> int:
    console = console or Console()
    console.print(f"[bold]kafkaproof demo[/bold]: one partition log, {RECORDS} acknowledged appends, "
                  f"{SEGMENT_BYTES // 1024} KiB segments, simulated disk")
    table = Table(title="Acknowledged records lost, by flush policy and fault")
    table.add_column("log.flush.interval.messages")
    table.add_column("fsyncs", justify="right")
    for fault in FAULTS:
        table.add_column(fault, justify="right")
    policies = [("Kafka default (never)", 2**63 - 1), ("100", 100), ("1", 1)]
    bit_flip_report: list[str] = []
    for label, messages in policies:
        cells, fsyncs = [], 0
        for fault in FAULTS:
            lost, fsyncs, report = _after_fault(fault, messages, seed=7)
            cells.append(f"[red]{lost}[/red]" if lost else "0")
            bit_flip_report = report
        table.add_row(label, str(fsyncs), *cells)
    console.print(table)
    console.print(
        "A process crash loses nothing: the page cache survives. A power loss keeps only what was "
        "fsynced; with Kafka's default that is just the segments closed by a roll, so acknowledged "
        "writes vanish. Kafka accepts this and makes durability a property of replication "
        "(acks=all, min.insync.replicas) instead of fsync. A bit flip is caught by the batch CRC32C; "
        "as in Kafka, recovery cuts the log at the bad batch and says so:"
    )
    for line in bit_flip_report:
        console.print(f"  [dim]{line}[/dim]", highlight=False)
    _replicated(console)
    _groups(console)
    with tempfile.TemporaryDirectory() as tmp:
        log = _fill(RealDisk(tmp), LogConfig(segment_bytes=SEGMENT_BYTES))
        log.close()
        first = log.segments[0].log_path
        console.print(f"\nSegments on a real disk, named by base offset: "
                      f"{', '.join(s.log_path.split('/')[-1] for s in log.segments[:3])}, ...")
        console.print(f"[dim]$ kafkaproof dump-log {first} (first batches)[/dim]")
        for i, (line, _ok) in enumerate(dump_segment(f"{tmp}/{first}")):
            if i >= 4:
                break
            console.print(line, highlight=False, soft_wrap=True)
    return 0


# (label, broker properties, producer properties)
CONFIGS = [
    ("acks=1", {"min.insync.replicas": "1"}, {"acks": "1"}),
    ("acks=all, min.insync.replicas=1 (Kafka's defaults)", {"min.insync.replicas": "1"}, {"acks": "all"}),
    ("acks=all, min.insync.replicas=2 (the seed's advice)", {"min.insync.replicas": "2"}, {"acks": "all"}),
]
SEEDS = (1, 2, 3)
DEMO_SECONDS = 40


def _replicated(console: Console) -> None:
    console.print(f"\n[bold]Replicated:[/bold] 3 brokers, replication factor 3, 2 producers, "
                  f"{DEMO_SECONDS} simulated seconds of broker crashes, power losses and partitions, "
                  f"seeds {', '.join(map(str, SEEDS))}")
    table = Table(title="Acknowledged writes lost (lost-write checker)")
    for col in ("configuration", "sent", "acked", "lost", "runs with loss"):
        table.add_column(col, justify="right" if col != "configuration" else "left")
    for label, broker, producer in CONFIGS:
        sent = acked = lost = runs_lost = 0
        for seed in SEEDS:
            c = Cluster(seed=seed, broker_props=broker)
            w = Workload(producers=2, consumers=0, faults=("crash", "power", "partition"),
                         fault_interval_ms=5000, producer_props=producer)
            run_workload(c, w, DEMO_SECONDS * 1000)
            settle(c)
            tps = [TopicPartition(w.topic, p) for p in range(w.partitions)]
            violations = check_durability(c.history, {tuple(tp): c.committed(tp) for tp in tps})
            sent += len([op for op in c.history.ops if op.f == "send" and op.type == "invoke"])
            acked += len([op for op in c.history.completions("send", "ok") if op.offset is not None])
            lost += len(violations)
            runs_lost += bool(violations)
        table.add_row(label, str(sent), str(acked), f"[red]{lost}[/red]" if lost else "0",
                      f"{runs_lost}/{len(SEEDS)}")
    console.print(table)
    console.print(
        "acks=1 acknowledges before the followers have a write, so a leader crash loses it. acks=all "
        "waits for the ISR and pays in availability (fewer writes acknowledged while brokers are down). "
        "Neither acks=all setting lost a write in these runs, but both can: when the ISR has shrunk to "
        "the leader alone and that leader loses power, it comes back with an empty log and is still "
        "elected (Kafka's KIP-966 case); min.insync.replicas=2 only stops new writes in that state. "
        "See `kafkaproof guarantees` and tests/test_scenarios.py::test_last_isr_member_loses_power..."
    )


def _groups(console: Console) -> None:
    from kafkaproof.impl.sim.consumer_app import DESCRIPTIONS, crash_at_worst_moment

    console.print("\n[bold]Consumer groups:[/bold] one partition, two members; the owner crashes at the worst"
                  " moment for its commit strategy and the other member takes over")
    table = Table(title="What the application saw (group checkers)")
    for col in ("commit strategy", "records processed twice", "records never processed", "delivery"):
        table.add_column(col, justify="left" if col in ("commit strategy", "delivery") else "right")
    for strategy, semantics in (("after", "at-least-once"), ("before", "at-most-once"),
                                ("auto", "at-least-once"), ("auto-async", "loses records")):
        _, found = crash_at_worst_moment(strategy)
        twice = sum(v.name == "redelivered" for v in found)
        never = sum(v.name == "unseen" for v in found)
        table.add_row(DESCRIPTIONS[strategy], f"[yellow]{twice}[/yellow]" if twice else "0",
                      f"[red]{never}[/red]" if never else "0", semantics)
    console.print(table)
    console.print("Commit after processing never loses a record but may process one twice; commit before "
                  "never processes twice but may lose. See `kafkaproof guarantees --groups` and "
                  "`kafkaproof explore --model group`.")
