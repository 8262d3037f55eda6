"""Faults in real processes: a controller and three brokers, each its own OS process
(`kafkaproof serve --controller-only` / `--broker-id N --controller ...`), a real
Kafka client producing with acks=all and idempotence, one broker killed with SIGKILL
and later restarted, another stopped with SIGSTOP and resumed. The client's history
and the partitions read back afterwards go through the same checkers as the
simulator's runs: with the safe configuration nothing acknowledged is lost,
duplicated or reordered."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafkaproof.properties.duplicates import check_duplicates
from kafkaproof.properties.durability import check_durability
from kafkaproof.properties.history import History
from kafkaproof.properties.order import check_send_order

SAFE = ["default.replication.factor=3", "min.insync.replicas=2", "replica.lag.time.max.ms=3000",
        "offsets.topic.num.partitions=3"]
TOPIC, PARTITIONS = "events", 3


class Proc:
    def __init__(self, args: list[str], log_path) -> None:
        self.log = open(log_path, "w")
        self.p = subprocess.Popen([sys.executable, "-m", "kafkaproof", "serve", *args, "--log-level", "INFO"],
                                  stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()  # "kafkaproof serve: ... at HOST:PORT"
        assert "at 127.0.0.1:" in line, f"did not start: {line!r}"
        self.port = int(line.rsplit(":", 1)[1])

    def signal(self, sig) -> None:
        self.p.send_signal(sig)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
        self.log.close()


@pytest.fixture
def processes(tmp_path):
    procs = {}

    def start(name: str, args: list[str]) -> Proc:
        procs[name] = Proc(args, tmp_path / f"{name}.log")
        return procs[name]

    yield start, tmp_path
    for p in procs.values():
        p.stop()


def broker_args(b: int, controller: Proc, data: str, port: int = 0) -> list[str]:
    return ["--broker-id", str(b), "--controller", f"127.0.0.1:{controller.port}", "--port", str(port),
            "--data-dir", data] + [x for s in SAFE for x in ("--set", s)]


def test_sigkill_and_sigstop_of_brokers_lose_no_acknowledged_write(processes):
    start, tmp = processes
    controller = start("controller", ["--controller-only", "--port", "0", "--data-dir", str(tmp / "controller")]
                       + [x for s in SAFE for x in ("--set", s)])
    brokers = {b: start(f"broker-{b}", broker_args(b, controller, str(tmp / "data"))) for b in range(3)}
    bootstrap = ",".join(f"127.0.0.1:{p.port}" for p in brokers.values())
    time.sleep(1)  # registration
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])
    admin.close()

    history, lock, t0 = History(), threading.Lock(), time.monotonic()

    def now() -> int:
        return int((time.monotonic() - t0) * 1000)

    def record(type_, value, partition=None, offset=None, error=None) -> None:
        with lock:
            history.add(now(), "producer", type_, "send", topic=TOPIC, value=value, partition=partition,
                        offset=offset, error=error)

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             request_timeout_ms=3000, retry_backoff_ms=100, linger_ms=5)
    stop_sending = threading.Event()

    def produce() -> None:
        i = 0
        while not stop_sending.is_set():
            value = f"v{i}"
            record("invoke", value)
            f = producer.send(TOPIC, key=str(i % 11).encode(), value=value.encode())
            f.add_callback(lambda md, value=value: record("ok", value, md.partition, md.offset))
            f.add_errback(lambda e, value=value: record("fail", value, error=type(e).__name__))
            i += 1
            time.sleep(0.004)

    sender = threading.Thread(target=produce)
    sender.start()
    faults = []
    time.sleep(3)
    brokers[0].signal(signal.SIGKILL)  # a leader of one partition at least, mid-production
    brokers[0].p.wait(10)
    faults.append(("kill", now(), brokers[0].p.returncode))
    time.sleep(5)
    brokers[0] = start("broker-0-again", broker_args(0, controller, str(tmp / "data"), brokers[0].port))
    faults.append(("restart", now()))
    time.sleep(4)
    brokers[1].signal(signal.SIGSTOP)  # a long GC pause: its sessions and fetches time out
    faults.append(("stop", now()))
    time.sleep(4)
    brokers[1].signal(signal.SIGCONT)
    faults.append(("continue", now()))
    time.sleep(4)
    stop_sending.set()
    sender.join()
    producer.flush(60)
    producer.close(10)

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False)
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    end = consumer.end_offsets(tps)
    log: dict = {(TOPIC, p): [] for p in range(PARTITIONS)}
    deadline = time.monotonic() + 60
    while sum(len(v) for v in log.values()) < sum(end.values()) and time.monotonic() < deadline:
        for tp, records in consumer.poll(timeout_ms=500).items():
            log[(TOPIC, tp.partition)].extend((r.offset, r.key.decode(), r.value.decode()) for r in records)
    consumer.close()

    acked = [op for op in history.ops if op.type == "ok"]
    # not vacuous: the faults happened, during real production
    assert faults[0][2] == -signal.SIGKILL and [f[0] for f in faults] == ["kill", "restart", "stop", "continue"]
    assert len(acked) > 500 and any(op.time > faults[0][1] for op in acked) and any(op.time > faults[2][1] for op in acked)
    assert sum(len(v) for v in log.values()) == sum(end.values())
    found = check_durability(history, log) + check_duplicates(history, log) + check_send_order(history)
    assert found == [], "\n".join(str(v) for v in found[:5])
    assert os.path.exists(tmp / "data" / "broker-0" / f"{TOPIC}-0")  # data on disk, as Kafka lays it out
