"""An application in a consumer group: poll, process, commit - with one of the commit
strategies the seed notes compare. Processing is recorded in the history (`process`),
so the group checkers can tell what the application actually handled.

    after        process the records poll returned, then commitSync: at-least-once
    before       commitSync the new positions, then process (only if the commit held):
                 at-most-once
    auto         enable.auto.commit; process synchronously within the poll loop
    auto-async   enable.auto.commit; hand records to a worker that processes them
                 later, as an application with a thread pool does: the next poll's
                 auto commit can cover records not yet processed
    async        process, then commitAsync (no retry; a later commit covers a failed one)
    transactional  exactly-once consume-transform-produce (KIP-98, KIP-447): each batch
                 is one transaction that writes its output to `<topic>-out` and commits
                 the input offsets with it (sendOffsetsToTransaction with the group's
                 generation, which fences a zombie member); after an abort, back to
                 the committed offsets. Reads with isolation.level=read_committed.
"""

from __future__ import annotations

from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.impl.sim.cluster import Cluster, ConsumerHandle
from kafkaproof.impl.sim.faults import FAULTS
from kafkaproof.properties.groups import check_consumption
from kafkaproof.properties.history import OK

STRATEGIES = ("after", "before", "auto", "auto-async", "async", "transactional")
DESCRIPTIONS = {"after": "process, then commitSync", "before": "commitSync, then process",
                "auto": "enable.auto.commit, processing within the poll loop",
                "auto-async": "enable.auto.commit, processing on a worker after poll returns",
                "async": "process, then commitAsync",
                "transactional": "output and offsets in one transaction (exactly-once)"}
OUTPUT_SUFFIX = "-out"


class ConsumerApp:
    def __init__(self, cluster: Cluster, name: str, strategy: str, props: dict, topics: list[str] | None = None,
                 pattern: str | None = None, poll_interval_ms: int = 100, worker_delay_ms: int = 300) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown commit strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
        self.c, self.strategy = cluster, strategy
        auto = "true" if strategy.startswith("auto") else "false"
        extra = {"isolation.level": "read_committed"} if strategy == "transactional" else {}
        self.consumer: ConsumerHandle = cluster.consumer(name, {**props, **extra, "enable.auto.commit": auto})
        self.consumer.subscribe(topics, pattern, listener=self)
        self.producer = None
        if strategy == "transactional":
            # One transactional.id per application instance name: a restarted instance
            # fences its predecessor; the group generation fences a zombie member.
            self.producer = cluster.producer(name, {"transactional.id": f"eos-{name}"}, process=self.consumer.process)
            self.producer.init_transactions()
        self.worker_delay_ms = worker_delay_ms
        self.committing = False  # blocked in commitSync
        self.stalled_until = 0  # the application is busy (a slow batch): it does not poll
        self.stopped = False
        self.on_processed = None  # a test's hook: called after each processed batch
        self.on_transaction = None  # a test's hook: called once a transaction's outputs are sent
        # For the danger events (impl/sim/dangers.py): when records were last polled,
        # processed and committed, and how many batches a worker still holds.
        self.last_poll = self.last_process = self.last_commit = -1
        self.worker_holds = 0
        self._crash_at: tuple[str, object] | None = None  # (moment, then): see crash_at
        self.consumer.on_commit = self._committed
        cluster.every(poll_interval_ms, self.tick)

    @property
    def alive(self) -> bool:
        return not self.stopped and self.consumer.node not in self.c.down

    def tick(self) -> None:
        if not self.alive or self.committing or self.c.now < self.stalled_until:
            return
        if self.producer is not None and self.producer.proc.txn.state != "ready":
            return  # initializing, or a transaction is being committed or aborted
        records = self.consumer.poll()
        if not records:
            return
        rows = tuple((tp.topic, tp.partition, r.offset, None, None) for tp, r in records)
        self.last_poll = self.c.now
        if self.strategy == "transactional":
            self._transact(records, rows)
        elif self.strategy == "before":
            self._commit(then=lambda ok: ok and self._process(rows))
        elif self.strategy == "auto-async":
            self.worker_holds += 1
            self.c.at(self.worker_delay_ms, lambda: self._process(rows, from_worker=True))
        else:
            self._process(rows)
            if self.strategy == "after":
                self._commit()
            elif self.strategy == "async" and self.alive:
                self.consumer.commit(sync=False)
                self._reached("committed")

    def _commit(self, then=None) -> None:
        if not self.alive:
            return
        self.committing = True

        def done(error: ErrorCode) -> None:
            self.committing = False
            if then is not None:
                then(error == ErrorCode.NONE)

        self.consumer.commit(sync=True, on_done=done)
        self._reached("committed")  # its request is on its way; the answer may never be heard

    def _transact(self, records: list, rows: tuple) -> None:
        p, group = self.producer, self.consumer.proc.group
        p.begin_transaction()
        self.c.history.add(self.c.now, self.consumer.process, OK, "txn-read", value=str(p.txn_count),
                           records=tuple((tp.topic, tp.partition, r.offset, None, r.value.decode())
                                         for tp, r in records))
        offsets: dict[TopicPartition, int] = {}
        for tp, r in records:
            p.send(tp.topic + OUTPUT_SUFFIX, r.key, r.value)
            offsets[tp] = max(offsets.get(tp, 0), r.offset + 1)
        p.send_offsets_to_transaction(offsets, (group.group_id, group.generation, group.member_id))
        if self.on_transaction is not None:
            self.on_transaction()

        def committed(error: ErrorCode) -> None:
            if error == ErrorCode.NONE:
                self.last_process = self.last_commit = self.c.now
                if self.on_processed is not None:
                    self.on_processed()
            elif p.proc.txn.state == "fatal-error":
                self.stopped = True  # fenced: a newer instance or member owns this work
            else:
                p.abort_transaction(lambda error: self._rewind())

        p.commit_transaction(committed)

    def _rewind(self) -> None:
        """After an abort: read again from the committed offsets (what the aborted
        transaction consumed was not committed)."""
        if self.alive:
            c = self.c
            c._apply(self.consumer.node, self.consumer.proc.rewind(c._local(self.consumer.node)))

    def _committed(self, error: ErrorCode) -> None:
        if error == ErrorCode.NONE:
            self.last_commit = self.c.now
            if self.strategy.startswith("auto") and self._crash_at is not None:
                # (This runs inside the consumer's handling of the answer: crash right
                # after it, so the rest of that handling sends nothing from a dead process.)
                self.c.at(0, lambda: self._reached("committed"))

    # The consumer's rebalance listener: only watched, for the danger events.
    def on_partitions_revoked(self, tps: list[TopicPartition]) -> None:
        if self.worker_holds and tps:
            self.c.dangers.add("rebalance-during-async-processing")

    on_partitions_lost = on_partitions_revoked

    def _process(self, rows: tuple, from_worker: bool = False) -> None:
        self.worker_holds -= from_worker
        if self.alive:  # a crashed application processes nothing more
            self.last_process = self.c.now
            self.c.history.add(self.c.now, self.consumer.process, OK, "process", records=rows)
            if self.on_processed is not None:
                self.on_processed()
            self._reached("processed")

    # -- what the tests do to it ------------------------------------------------------------------

    def stall(self, ms: int) -> None:
        """A slow batch: no poll for `ms` (past max.poll.interval.ms, the member leaves)."""
        self.stalled_until = self.c.now + ms

    def stall_past_poll_interval(self) -> None:
        """The member-stall fault: a batch that takes 2 s longer than max.poll.interval.ms.
        The heartbeat thread runs on, so the member leaves the group itself (KIP-62)."""
        ms = self.consumer.proc.config.max_poll_interval_ms + 2000
        self.stall(ms)
        self.c.record_fault("member-stall", f"{self.consumer.node} for {ms} ms")

    def pause(self) -> None:
        """A GC pause of the application's process (the member-pause fault): no poll, no
        heartbeat, nothing delivered, for two heartbeat intervals past its session. The
        coordinator drops the member and gives its partitions to the others; it resumes
        believing it still owns them (Kafka's zombie consumer) until an answer fences it."""
        config = self.consumer.proc.config
        ms = config.session_timeout_ms + 2 * config.heartbeat_interval_ms
        self.stall(ms)
        for node in sorted({self.consumer.node} | ({self.producer.node} if self.producer else set())):
            self.c.pause(node, ms)

    def close(self) -> None:
        self.consumer.close()
        self.stopped = True

    def crash_at(self, moment: str, then=None) -> None:
        """Crash at the next `moment` (one of MOMENTS), then call `then`: "any" is now;
        "processed" right after a batch is processed, before its commit is sent;
        "committed" right after a commit - as its request leaves (commitSync,
        commitAsync), or when an auto commit is acknowledged - before what follows is
        processed. The consumer model's traces name these moments (verify.to_schedule)."""
        if moment not in MOMENTS:
            raise ValueError(f"unknown moment {moment!r}: one of {', '.join(MOMENTS)}")
        self._crash_at = (moment, then)
        if moment == "any":
            self._reached("any")

    def _reached(self, moment: str) -> None:
        if self._crash_at is not None and self._crash_at[0] == moment and self.alive:
            then = self._crash_at[1]
            self._crash_at = None
            self.crash()
            if then is not None:
                then()

    def crash(self) -> None:
        """The application's process dies: its consumer and (if any) its producer."""
        if self.last_poll > min(self.last_process, self.last_commit):
            self.c.dangers.add("member-crashed-mid-commit")  # polled records not yet processed and committed
        self.c.crash(self.consumer.node)
        if self.producer is not None:
            self.producer.crashed()
            self.c.close_client(self.producer.node)


MOMENTS = FAULTS["member"].param("moment").choices  # when a member crash strikes (ConsumerApp.crash_at)
# The moment that hurts each strategy most (see crash_at_worst_moment).
WORST_MOMENT = {"after": "processed", "before": "committed", "auto": "processed", "auto-async": "committed",
                "async": "processed"}


def crash_at_worst_moment(strategy: str, seed: int = 1) -> tuple[Cluster, list]:
    """One partition, two members of a group (the second idle). The first member crashes
    at the moment that hurts its strategy most (WORST_MOMENT): right after processing a
    batch (before it commits), or right after a commit, before processing. The second
    takes over. Returns the cluster and what the group checker found (unseen, redelivered)."""
    c = Cluster(seed=seed, broker_props={"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"})
    c.create_topic("t", 1, 3)
    p = c.producer("p")
    sent = iter(range(10**6))
    c.every(20, lambda: p.send("t", None, b"v%d" % next(sent)), until=8000)
    props = {"group.id": "app", "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
             "heartbeat.interval.ms": "1000", "partition.assignment.strategy": "range", "max.poll.records": "5"}
    first = ConsumerApp(c, "first", strategy, props, topics=["t"])
    c.run_for(3000)
    second = ConsumerApp(c, "second", strategy, props, topics=["t"])
    c.run_for(1000)
    crashed: list[int] = []
    first.crash_at(WORST_MOMENT[strategy], then=lambda: crashed.append(c.now))
    c.run_for(30_000)
    if not crashed or not second.consumer.proc.group.owned:
        raise RuntimeError(f"{strategy}: the scenario did not unfold (crashed={bool(crashed)})")
    return c, check_consumption(c.history, {("t", 0): c.committed(TopicPartition("t", 0))})
