"""Jepsen's Kafka workload over the wire, against any Kafka-compatible cluster
(jepsen.tests.kafka's shape): processes that send, poll and run transactions of both,
with assign or subscribe mixed in at a set probability and client crashes, then
Jepsen's final read. The history it records is Jepsen's (properties/jepsen_kafka.py)
and is judged from the history alone.

A key is a partition of one topic: key k is partition k. Values are unique integers.
Each process is one thread with its own clients (confluent-kafka's librdkafka, or
kafka-python); a crashed client's process continues as a new process number, as
Jepsen's does (process + concurrency).

What a client sees becomes the operation's type: ok when every send was acknowledged
and every poll answered; fail only when nothing can have happened (a local refusal, a
transaction aborted); info when it may have (a timeout, a lost connection).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from kafkaproof.properties.jepsen_kafka import NEMESIS

# librdkafka's own log (disconnects, retries: the faults seen from the client), kept out
# of the terminal; `kafkaproof test` writes it to clients.log in its results.
CLIENT_LOG = logging.getLogger("kafkaproof.clients")
CLIENT_LOG.propagate = False


@dataclass
class Options:
    bootstrap: str
    topic: str = "kafkaproof-jepsen"
    keys: int = 4
    concurrency: int = 4
    rate: float = 40.0  # operations per second, all processes together
    duration: float = 20.0  # seconds of operations before the final read
    acks: str = "all"
    idempotence: bool = True
    txn: bool = False
    sub_via: str = "assign"  # or "subscribe"
    sub_p: float = 0.05  # the chance that an operation is an assign or subscribe
    crash_p: float = 0.0  # the chance that an operation crashes its client
    poll_p: float = 0.5  # the chance that a micro-operation is a poll rather than a send
    client: str = "confluent"  # or "kafka-python"
    seed: int = 0
    op_timeout: float = 10.0  # seconds an operation may take before it is info
    final_read_timeout: float = 60.0
    replication_factor: int = 3


@dataclass
class Recorder:
    """The history: Jepsen's operations, indexed in the order they happened."""

    t0: int = field(default_factory=time.monotonic_ns)
    ops: list[dict] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, process, type_: str, f: str, value, **extra) -> dict:
        with self.lock:
            op = {"index": len(self.ops), "time": time.monotonic_ns() - self.t0, "process": process,
                  "type": type_, "f": f, "value": value, **extra}
            self.ops.append(op)
            return op

    def nemesis(self, f: str, node) -> None:
        self.add(NEMESIS, "info", f, node)


class Indefinite(Exception):
    """The operation may or may not have taken effect (info)."""


class Definite(Exception):
    """The operation did not take effect (fail)."""


class Client:
    """What every wire client keeps the same way, whatever its library: its consumer's
    place on each key (kept across assigns, forgotten on a rebalance or an abort's
    rewind), the rebalances an operation saw, and how micro-operations complete. A
    library's client (workload_confluent, workload_kafka_python) supplies `_send(k, v)`,
    `_poll()` and `_finish()`."""

    def __init__(self, options: Options, process: int) -> None:
        self.o, self.process = options, process
        self.rebalances: list[dict] = []
        self.positions: dict[int, int] = {}  # key -> the next offset this consumer reads

    def _keep_places(self, keys: list[int]) -> None:
        self.positions = {k: v for k, v in self.positions.items() if k in keys}

    def _moved(self, partitions) -> None:
        """A rebalance assigned or revoked `partitions`: logged, their places forgotten."""
        self.rebalances.append({"keys": sorted(p.partition for p in partitions)})
        for p in partitions:
            self.positions.pop(p.partition, None)

    def _read(self, got: dict[int, list], partition: int, offset: int, value: bytes) -> None:
        got.setdefault(partition, []).append([offset, int(value)])
        self.positions[partition] = offset + 1

    def _run(self, mops: list[list]) -> list[list]:
        """Each micro-operation in order, then `_finish()` (commit or flush: the sent
        values' offsets); sends completed with their offsets, polls with what they read."""
        done = []
        for mop in mops:
            if mop[0] == "send":
                self._send(mop[1], mop[2])
                done.append(mop)
            else:
                done.append(["poll", self._poll()])
        offsets = self._finish()
        return [["send", m[1], [offsets[m[2]], m[2]]] if m[0] == "send" else m for m in done]


def create_topic(options: Options) -> None:
    """The workload's topic, one partition per key; an unreachable bootstrap is a clear
    error before anything runs."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": options.bootstrap, "socket.timeout.ms": 5000, "logger": CLIENT_LOG})
    try:
        metadata = admin.list_topics(timeout=10)
    except KafkaException as e:
        raise ConnectionError(f"cannot reach a broker at {options.bootstrap}: {e.args[0].str()}") from None
    if options.topic in metadata.topics:
        have = len(metadata.topics[options.topic].partitions)
        if have < options.keys:
            raise ValueError(f"topic {options.topic} has {have} partitions; --keys {options.keys} needs as many")
        return
    [future] = admin.create_topics([NewTopic(options.topic, options.keys, options.replication_factor)]).values()
    try:
        future.result(30)
    except KafkaException as e:
        raise ValueError(f"cannot create topic {options.topic}: {e.args[0].str()}") from None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until every partition has a leader
        parts = admin.list_topics(options.topic, timeout=10).topics[options.topic].partitions
        if len(parts) == options.keys and all(p.leader >= 0 for p in parts.values()):
            return
        time.sleep(0.2)


class Worker(threading.Thread):
    """One Jepsen process: operations one at a time until `deadline`."""

    def __init__(self, options: Options, recorder: Recorder, thread: int, values, deadline: float) -> None:
        super().__init__(name=f"process-{thread}", daemon=True)
        self.o, self.rec, self.values, self.deadline = options, recorder, values, deadline
        self.process = thread
        self.rng = random.Random(f"{options.seed}-{thread}")
        self.client = None  # workload_confluent.ConfluentClient or workload_kafka_python's
        self.failure: BaseException | None = None
        self.open: tuple | None = None  # (f, value) of the operation under way
        self.abandoned = False

    def _record(self, type_: str, f: str, value, **extra) -> None:
        """Into the history, unless this process was given up on (abandon): its late
        completion must not follow the info the history already holds for it."""
        with self.rec.lock:
            if self.abandoned:
                return
            self.open = (f, value) if type_ == "invoke" else None
        self.rec.add(self.process, type_, f, value, **extra)

    def abandon(self) -> None:
        """Give up on a process stuck in its client past the run: its open operation is
        info (it may or may not have happened), as Jepsen completes a timed-out one."""
        with self.rec.lock:
            self.abandoned, pending = True, self.open
        if pending is not None:
            self.rec.add(self.process, "info", pending[0], pending[1], error="the client never returned")

    def _connect(self) -> bool:
        """A new client for this process, subscribed to every key; False (after a pause)
        when the cluster would not have one - a broker down, no transaction coordinator -
        as Jepsen's client open retries."""
        try:
            self.client = make_client(self.o, self.process)
        except Exception as e:  # noqa: BLE001 - whatever the client library raises
            CLIENT_LOG.warning("process %s: no client: %s", self.process, e)
            time.sleep(1)
            return False
        return self._subscribe(list(range(self.o.keys)))

    def _subscribe(self, keys: list[int]) -> bool:
        """An assign or subscribe; one the client refuses is a fail (nothing happened)."""
        f = self.o.sub_via
        self._record("invoke", f, keys)
        try:
            getattr(self.client, f)(keys)
        except Exception as e:  # noqa: BLE001
            self._record("fail", f, keys, error=str(e))
            self._crash(recorded=False)
            return False
        self._record("ok", f, keys)
        return True

    def _mops(self) -> tuple[str, list[list]]:
        n = self.rng.randint(1, 4) if self.o.txn else 1
        mops = [["poll"] if self.rng.random() < self.o.poll_p else ["send", self.rng.randrange(self.o.keys),
                                                                      next(self.values)]
                for _ in range(n)]
        f = "txn" if self.o.txn else mops[0][0]
        return f, mops

    def _crash(self, recorded: bool = True) -> None:
        """Jepsen's client crash (recorded: a crash operation; not after an info, which
        is a crash already): the process is gone, a new one takes its place."""
        if recorded:
            self._record("invoke", "crash", None)
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - a crash does not care how the client ends
            pass
        if recorded:
            self._record("info", "crash", None)
        self.process += self.o.concurrency
        self.client = None

    def run(self) -> None:
        gap = self.o.concurrency / self.o.rate
        try:
            while time.monotonic() < self.deadline:
                if self.client is None and not self._connect():
                    continue
                roll = self.rng.random()
                if roll < self.o.crash_p:
                    self._crash()
                elif roll < self.o.crash_p + self.o.sub_p:
                    keys = sorted(self.rng.sample(range(self.o.keys), self.rng.randint(1, self.o.keys)))
                    self._subscribe(keys)
                else:
                    self._operate(*self._mops())
                time.sleep(gap * self.rng.uniform(0.5, 1.5))
        except BaseException as e:  # noqa: BLE001 - reported by the caller, not lost in a thread
            self.failure = e
        finally:
            if self.client is not None:
                try:
                    self.client.close()
                except Exception:  # noqa: BLE001
                    pass

    def _operate(self, f: str, mops: list[list]) -> None:
        self._record("invoke", f, mops)
        rebalanced = len(self.client.rebalances)
        try:
            done = self.client.run(mops)
        except Definite as e:
            self._record("fail", f, mops, error=str(e))
            return
        except Exception as e:  # noqa: BLE001 - Indefinite, or anything else the client raised
            self._record("info", f, mops, error=str(e))
            self._crash(recorded=False)  # its state is unknown: a new process, as in Jepsen
            return
        extra = {"rebalance-log": self.client.rebalances[rebalanced:]} if len(self.client.rebalances) > rebalanced else {}
        self._record("ok", f, done, **extra)


def make_client(options: Options, process: int):
    if options.client == "kafka-python":
        from kafkaproof.workload_kafka_python import KafkaPythonClient

        return KafkaPythonClient(options, process)
    from kafkaproof.workload_confluent import ConfluentClient

    return ConfluentClient(options, process)


def final_read(options: Options, recorder: Recorder, process: int) -> bool:
    """Jepsen's final read: a fresh consumer assigned every key from the beginning polls
    until each key reaches the highest offset any send was acknowledged at - or the end
    of its log, when the log no longer goes that far: its last poll then records those
    ends ("log-end"), and the analysis calls the acknowledged writes beyond them lost.
    False if it could not within the timeout."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    target: dict[int, int] = {}
    for op in recorder.ops:
        if op["type"] == "ok" and op["f"] in ("send", "txn"):
            for mop in op["value"]:
                if mop[0] == "send":
                    target[mop[1]] = max(target.get(mop[1], -1), mop[2][0])
    consumer = Consumer({"bootstrap.servers": options.bootstrap, "group.id": f"kafkaproof-final-{process}",
                         "logger": CLIENT_LOG, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "isolation.level": "read_committed"})
    # Where the log ends: the high watermark, asked at read_uncommitted. (A read_committed
    # consumer is told the last stable offset instead, which a crashed process's open
    # transaction holds back until it times out: not the end of the log.)
    ends_of = Consumer({"bootstrap.servers": options.bootstrap, "group.id": f"kafkaproof-final-{process}-ends",
                        "logger": CLIENT_LOG, "isolation.level": "read_uncommitted"})
    keys = list(range(options.keys))
    recorder.add(process, "invoke", "assign", keys)
    consumer.assign([TopicPartition(options.topic, k, 0) for k in keys])
    recorder.add(process, "ok", "assign", keys)
    position = {k: 0 for k in keys}  # the next offset to read
    ends: dict[int, int] = {}  # keys whose log ends below their highest acknowledged offset

    def done(k: int) -> bool:
        if position[k] > target.get(k, -1):
            return True
        try:
            end = ends_of.get_watermark_offsets(TopicPartition(options.topic, k), 5)[1]
        except KafkaException:
            return False
        if position[k] >= end:
            ends[k] = end
            return True
        return False

    deadline = time.monotonic() + options.final_read_timeout
    last = None
    try:
        while time.monotonic() < deadline:
            if last is not None and all(done(k) for k in keys):
                if ends:  # what the analysis needs to call the acknowledged writes past them lost
                    last["log-end"] = dict(ends)
                return True
            recorder.add(process, "invoke", "poll", [["poll"]])
            got: dict[int, list] = {}
            for m in consumer.consume(num_messages=500, timeout=1.0):
                if not m.error():
                    got.setdefault(m.partition(), []).append([m.offset(), int(m.value())])
                    position[m.partition()] = m.offset() + 1
            last = recorder.add(process, "ok", "poll", [["poll", got]])
        return False
    finally:
        consumer.close()
        ends_of.close()


class Observer(threading.Thread):
    """The danger events a client can see (impl/sim/dangers.py's names), from the cluster's
    metadata polled every `every` seconds: isr-shrank-to-leader (a replicated partition's
    ISR down to its leader), out-of-sync-elected (a leader that was not in the ISR last
    seen), and leader changes. A state shorter than the polling interval can be missed."""

    def __init__(self, options: Options, every: float = 0.5) -> None:
        super().__init__(name="observer", daemon=True)
        self.o, self.every = options, every
        self.counts: dict[str, int] = {"isr-shrank-to-leader": 0, "out-of-sync-elected": 0, "leader-changed": 0}
        self._halt = threading.Event()

    def run(self) -> None:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.o.bootstrap, "logger": CLIENT_LOG})
        last: dict[int, tuple[int, frozenset]] = {}  # partition -> (leader, isr)
        while not self._halt.wait(self.every):
            try:
                parts = admin.list_topics(self.o.topic, timeout=2).topics[self.o.topic].partitions
            except (KafkaException, KeyError):
                continue
            for k, p in parts.items():
                if p.leader < 0:
                    continue
                isr = frozenset(p.isrs)
                before = last.get(k)
                if before is not None and before[0] != p.leader:
                    self.counts["leader-changed"] += 1
                    if p.leader not in before[1]:
                        self.counts["out-of-sync-elected"] += 1
                if len(p.replicas) > 1 and isr == {p.leader} and (before is None or before[1] != isr):
                    self.counts["isr-shrank-to-leader"] += 1
                last[k] = (p.leader, isr)

    def stop(self) -> dict[str, int]:
        self._halt.set()
        self.join(5)
        return dict(self.counts)


class _Unique:
    """The values sent, unique across processes."""

    def __init__(self) -> None:
        self._next, self._lock = 0, threading.Lock()

    def __next__(self) -> int:
        with self._lock:
            self._next += 1
            return self._next


@dataclass
class Outcome:
    ops: list[dict]
    final_read_complete: bool
    failures: list[str]
    dangers: dict[str, int] = field(default_factory=dict)  # Observer's counts


def run(options: Options, nemesis=None, progress=None) -> Outcome:
    """The workload for `options.duration` seconds with `nemesis` (kafkaproof.nemesis)
    injecting faults, the faults healed, then the final read."""
    create_topic(options)
    recorder = Recorder()
    values = _Unique()
    deadline = time.monotonic() + options.duration
    workers = [Worker(options, recorder, t, values, deadline) for t in range(options.concurrency)]
    observer = Observer(options)
    observer.start()
    if nemesis is not None:
        nemesis.record = recorder.nemesis
        nemesis.start()
    for w in workers:
        w.start()
    give_up = deadline + 3 * options.op_timeout  # a client call may hang (kafka-python's commits wait forever)
    try:
        while any(w.is_alive() for w in workers) and time.monotonic() < give_up:
            time.sleep(0.25)
            if progress is not None:
                progress(min(1.0, 1 - (deadline - time.monotonic()) / options.duration), recorder)
            if nemesis is not None and time.monotonic() >= deadline:
                nemesis.stop()  # the faults end with the workload; what runs is healed
                nemesis = None
    finally:
        if nemesis is not None:
            nemesis.stop()
    failures = [f"{w.name}: {type(w.failure).__name__}: {w.failure}" for w in workers if w.failure is not None]
    for w in workers:
        if w.is_alive():
            w.abandon()
            failures.append(f"{w.name}: process {w.process} never returned from its client; its operation is info")
    dangers = observer.stop()
    complete = final_read(options, recorder, max(w.process for w in workers) + options.concurrency)
    return Outcome(recorder.ops, complete, failures, dangers)
