"""Faults in real processes: a controller and three brokers, each its own OS process
(`kafkaproof serve --controller-only` / `--broker-id N --controller ...`), a real
Kafka client producing with acks=all and idempotence, one broker killed with SIGKILL
and later restarted, another stopped with SIGSTOP and resumed. The client's history
and the partitions read back afterwards go through the same checkers as the
simulator's runs: with the safe configuration nothing acknowledged is lost,
duplicated or reordered."""

import os
import signal
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafkaproof.properties.duplicates import check_duplicates
from kafkaproof.properties.durability import check_durability
from kafkaproof.properties.history import History
from kafkaproof.properties.order import check_send_order

from kafkaproof.nemesis import ProcessCluster

SAFE = ["default.replication.factor=3", "min.insync.replicas=2", "replica.lag.time.max.ms=3000",
        "offsets.topic.num.partitions=3"]
TOPIC, PARTITIONS = "events", 3


@pytest.fixture
def cluster_of(tmp_path):
    """A controller and three brokers, each its own process (kafkaproof.nemesis), with
    the workload's topic created."""
    made = []

    def make(settings: list[str], partitions: int) -> ProcessCluster:
        cluster = ProcessCluster(tmp_path, settings, 3)
        made.append(cluster)
        time.sleep(1)  # registration
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        admin.create_topics([NewTopic(TOPIC, partitions, 3)])
        admin.close()
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


class Production:
    """A real client producing in a thread; every send goes into a History as the
    simulator's clients record theirs."""

    def __init__(self, bootstrap: str, **producer) -> None:
        self.history, self._lock, self.t0 = History(), threading.Lock(), time.monotonic()
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=3000, retry_backoff_ms=100,
                                      linger_ms=5, **producer)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def now(self) -> int:
        return int((time.monotonic() - self.t0) * 1000)

    def _record(self, type_, value, partition=None, offset=None, error=None) -> None:
        with self._lock:
            self.history.add(self.now(), "producer", type_, "send", topic=TOPIC, value=value, partition=partition,
                             offset=offset, error=error)

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            value = f"v{i}"
            self._record("invoke", value)
            f = self.producer.send(TOPIC, key=str(i % 11).encode(), value=value.encode())
            f.add_callback(lambda md, value=value: self._record("ok", value, md.partition, md.offset))
            f.add_errback(lambda e, value=value: self._record("fail", value, error=type(e).__name__))
            i += 1
            time.sleep(0.004)

    def stop(self) -> History:
        self._stop.set()
        self._thread.join()
        self.producer.flush(60)
        self.producer.close(10)
        return self.history


def read_back(bootstrap: str, partitions: int) -> dict:
    """Every partition's records, as the durability checker takes the final log."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    tps = [TopicPartition(TOPIC, p) for p in range(partitions)]
    consumer.assign(tps)
    end = consumer.end_offsets(tps)
    log: dict = {(TOPIC, p): [] for p in range(partitions)}
    deadline = time.monotonic() + 60
    while sum(len(v) for v in log.values()) < sum(end.values()) and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            log[(TOPIC, tp.partition)].extend((r.offset, r.key.decode(), r.value.decode()) for r in records)
    consumer.close()
    assert sum(len(v) for v in log.values()) == sum(end.values())
    return log


def test_sigkill_and_sigstop_of_brokers_lose_no_acknowledged_write(cluster_of, tmp_path):
    cluster = cluster_of(SAFE, PARTITIONS)
    bootstrap = cluster.bootstrap
    run = Production(bootstrap, acks="all", enable_idempotence=True)
    faults = []
    time.sleep(3)
    cluster.kill(0)  # a leader of one partition at least, mid-production
    faults.append(("kill", run.now(), cluster.brokers[0].p.returncode))
    time.sleep(5)
    cluster.start(0)  # on its port and data, as a restarted broker
    faults.append(("restart", run.now()))
    time.sleep(4)
    cluster.pause(1)  # a long GC pause: its sessions and fetches time out
    faults.append(("stop", run.now()))
    time.sleep(4)
    cluster.resume(1)
    faults.append(("continue", run.now()))
    time.sleep(4)
    history = run.stop()
    log = read_back(bootstrap, PARTITIONS)

    acked = [op for op in history.ops if op.type == "ok"]
    # not vacuous: the faults happened, during real production
    assert faults[0][2] == -signal.SIGKILL and [f[0] for f in faults] == ["kill", "restart", "stop", "continue"]
    assert len(acked) > 500 and any(op.time > faults[0][1] for op in acked) and any(op.time > faults[2][1] for op in acked)
    found = check_durability(history, log) + check_duplicates(history, log) + check_send_order(history)
    assert found == [], "\n".join(str(v) for v in found[:5])
    assert os.path.exists(tmp_path / "data" / "broker-0" / f"{TOPIC}-0")  # data on disk, as Kafka lays it out


UNSAFE = ["default.replication.factor=3", "min.insync.replicas=1", "unclean.leader.election.enable=true",
          "replica.lag.time.max.ms=1000", "broker.session.timeout.ms=3000"]


def test_the_same_harness_catches_loss_with_an_unsafe_configuration(cluster_of):
    """The checkers are not blind here: acks=1 and unclean election, the followers
    stopped until the ISR is the leader alone, then the leader killed: the stale follower
    elected in its place never had what the leader acknowledged meanwhile."""
    cluster = cluster_of(UNSAFE, 1)
    bootstrap = cluster.bootstrap
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    [leader] = [p["leader_id"] for t in admin.describe_topics([TOPIC]) for p in t["partitions"]]
    admin.close()
    followers = [b for b in cluster.brokers if b != leader]
    run = Production(bootstrap, acks=1, enable_idempotence=False)
    time.sleep(2)
    stopped_at = run.now()
    for b in followers:
        cluster.pause(b)
    time.sleep(4)  # the leader drops them from the ISR (replica.lag.time.max.ms) and goes on acknowledging
    cluster.kill(leader)
    killed_at = run.now()
    for b in followers:
        cluster.resume(b)
    time.sleep(6)  # the controller fences the dead leader and elects a follower, uncleanly
    cluster.start(leader)
    time.sleep(3)
    history = run.stop()
    log = read_back(bootstrap, 1)
    lost = check_durability(history, log)
    assert lost, "acks=1 with an unclean election lost nothing: the harness would be blind"
    assert all(v.name == "lost-write" for v in lost)
    assert all(stopped_at <= v.ops[0].time <= killed_at for v in lost)  # acknowledged by the leader alone
