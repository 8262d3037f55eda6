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

from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch
from kafkaproof.impl.sim.scenarios import last_replica_standing
from kafkaproof.impl.storage import Log, LogConfig, RealDisk, SimDisk
from kafkaproof.impl.storage.dump import dump_segment

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
    _last_replica_standing(console)
    _groups(console)
    _transactions(console)
    _verify(console)
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


# (label, --set overrides): Kafka's defaults, the seed's advice, and two unsafe choices
CHECKS = [
    ("Kafka 4 defaults", []),
    ("seed's safe settings", ["min.insync.replicas=2", "acks=all", "enable.idempotence=true",
                              "unclean.leader.election.enable=false"]),
    ("acks=1 (default before Kafka 3.0)", ["acks=1"]),
    ("enable.idempotence=false", ["enable.idempotence=false"]),
]
CHECK_RUNS = 8


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    return table


def _print_wide(console: Console, table: Table) -> None:
    """Tables at least 120 columns wide: narrower terminals wrap cells rather than cut them."""
    Console(width=max(120, console.width)).print(table)


def _replicated(console: Console) -> None:
    from kafkaproof.claims import NOT_SHOWN, verdict
    from kafkaproof.impl.engine import build_setup, run_check, summarize

    console.print(f"\n[bold]kafkaproof check[/bold], side by side: {CHECK_RUNS} runs each of 30 simulated seconds,"
                  " 3 brokers, replication factor 3, every fault kind (crashes, power loss, partitions, pauses,"
                  " dropped and duplicated messages, clock jumps), seeds 0..7")
    table = Table(title="Guarantees by configuration (kafkaproof check --runs 8)")
    table.add_column("guarantee")
    columns = []
    for label, sets in CHECKS:
        table.add_column(label)
        columns.append(summarize(run_check(build_setup(sets=sets), CHECK_RUNS, seed=0)))
    for guarantee in columns[0]:
        cells = []
        for col in columns:
            row = col[guarantee]
            # A "held" says what its runs went through (the danger events; check's rule).
            status, _, _ = verdict({**row, "name": guarantee}, None)
            reached = sum(row["reached"].values())
            cells.append(f"[red]VIOLATED {row['violated']}/{row['runs']}[/red] ({', '.join(row['anomalies'])})"
                         if row["violated"] else "[yellow]NOT SHOWN[/yellow] (no danger reached)"
                         if status == NOT_SHOWN else f"held ({reached} danger events)" if row["reached"] else "held")
        table.add_row(guarantee, *cells)
    _print_wide(console, table)
    console.print(
        "Kafka's defaults (3.0 on) already send with acks=all and idempotence, so in these runs they keep what the "
        "seed's settings keep. The difference is min.insync.replicas: with 1, a write is acknowledged when "
        "the leader alone has it, and losing that leader (or its power) loses the write; 2 refuses such "
        "writes instead (less availability, no loss while one broker fails). acks=1 acknowledges before "
        "any follower has the write: leader failures lose acknowledged writes, and retries duplicate and "
        "reorder. Without idempotence, a retried batch whose answer was lost is written twice. "
        "Run `kafkaproof check --set KEY=VALUE` for your own settings; each violation is saved as a "
        "counterexample that `kafkaproof replay` re-executes."
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
    _print_wide(console, table)
    console.print("Commit after processing never loses a record but may process one twice; commit before "
                  "never processes twice but may lose. See `kafkaproof guarantees --groups` and "
                  "`kafkaproof explore --model group`.")


def _transactions(console: Console) -> None:
    from kafkaproof.impl.sim.txn_app import LATE_MARKER, late_marker

    console.print("\n[bold]Transactions:[/bold] one transactional producer; a transaction's marker is delivered"
                  " twice, the copy 600 ms late, while the next transaction writes")
    table = _table("What a read_committed consumer ends up with (transaction checker)",
                   ("scenario", "before KIP-890", "with KIP-890 (the default)"))
    for anomaly, (first, second, _) in LATE_MARKER.items():
        scenario = (f"T1 {'commits' if first else 'aborts'}, T2 {'commits' if second else 'aborts'}"
                    + (", T2 wrote before the copy only" if anomaly == "lost-transaction" else ""))
        cells = []
        for kip890 in (False, True):
            found = late_marker(anomaly, kip890)[1]
            cells.append(f"[red]{', '.join(found)}[/red]" if found else "held")
        table.add_row(scenario, *cells)
    _print_wide(console, table)
    console.print("Before KIP-890 a marker carries the epoch of the transaction's writes, so a late copy ends"
                  " whatever transaction that producer has open: it commits an aborted one's writes (G1a),"
                  " aborts part or all of a committed one (torn, lost). KIP-890 bumps the epoch per"
                  " transaction and the late copy is refused. See `kafkaproof guarantees --transactions`,"
                  " `kafkaproof explore --model transactions --kip890 false`.")


def _last_replica_standing(console: Console) -> None:
    from kafkaproof.model.explore import explore
    from kafkaproof.model.replication import Bounds, Model

    console.print("\n[bold]The last replica standing[/bold] (KIP-966): acks=all, min.insync.replicas=2; the ISR"
                  " shrinks to the leader, which then loses power with its log unflushed")
    table = _table("What happens to 10 acknowledged writes", ("brokers", "elected after the power loss",
                                                               "writes lost", "explorer (kip320 / kip966 model)"))
    for label, props, variant in (("Kafka 3.x (eligible.leader.replicas.enable=false)",
                                   {"eligible.leader.replicas.enable": "false"}, "kip320"),
                                  ("eligible.leader.replicas.enable=true (Kafka 4.1's default)",
                                   {"eligible.leader.replicas.enable": "true"}, "kip966")):
        run = last_replica_standing(props)
        who = "itself (the last ISR member)" if run.elected == run.leader else f"broker {run.elected}, from the ELR"
        found = explore(Model(variant, Bounds(2, 1, 2, power_loss=True, min_isr=2, unclean_shutdowns=1)), symmetry=True)
        lost = f"[red]{len(run.lost)} of {run.acked}[/red]" if run.lost else "none"
        model = f"[red]{found.invariant} in {len(found.trace) - 1} steps[/red]" if found.invariant else "holds"
        table.add_row(label, who, lost, model)
    _print_wide(console, table)
    console.print("With eligible leader replicas the followers that left the shrinking ISR stay eligible, the"
                  " leader's unclean shutdown takes it out of both sets, and an eligible follower leads. See"
                  " `kafkaproof explore --variant kip966 --power-loss --min-isr 2 --unclean-shutdowns 1`, and the"
                  " catalogue's last-replica-standing-without-elr.")


CRASHES = "crash,partition,drop"


def _verify(console: Console) -> None:
    from kafkaproof.impl.engine import build_setup
    from kafkaproof.verify import confirm, failure_model, judge

    console.print("\n[bold]kafkaproof verify[/bold]: the same questions to z3 - proved for every run of up to 10"
                  " steps with one broker down at a time, or broken with a schedule the cluster then replays")
    table = _table("Verdicts (z3) and what the simulated cluster did with the schedule",
                   ("configuration", "durability", "exactly-once", "availability (1 broker down)"))
    for label, sets in (("min.insync.replicas=2 (Kafka 4 defaults otherwise)", ["min.insync.replicas=2"]),
                        ("acks=1", ["acks=1"]), ("min.insync.replicas=3", ["min.insync.replicas=3"])):
        setup = build_setup(sets=sets, faults=CRASHES)
        cells = []
        for g in ("durability", "exactly-once", "availability"):
            v = judge(g, setup)
            if v.status == "VIOLATED":
                confirm(v, setup, seeds=4, out=None)
                cells.append(f"[red]VIOLATED[/red] ({'replayed' if v.confirmed else 'NOT replayed'})")
            else:
                cells.append(v.status)
        table.add_row(label, *cells)
    _print_wide(console, table)
    console.print(f"failure model: {failure_model(build_setup(faults=CRASHES), 1).describe()}"
                  " (`--faults crash,partition,drop`; by default verify, like check, adds power losses"
                  " without fsync: min.insync.replicas=2 then keeps writes only with eligible leader replicas,"
                  " Kafka 4.1's default - KIP-966)", highlight=False)
    console.print("`kafkaproof verify --synthesize --guarantee durability,exactly-once` asks z3 for the cheapest"
                  " configuration that proves them with availability.")
