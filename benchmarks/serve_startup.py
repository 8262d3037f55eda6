"""How fast `serve` is ready for a test: from starting the pytest plugin's broker
(kafkaproof/pytest_plugin.py, in this process) to the first acknowledged produce, for 1
and 3 brokers; beside it the floor - the same client producing to an already-running
broker, measured in the same run - and their ratio; the one-off import; peak memory.

    python benchmarks/serve_startup.py [--runs 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402
from confluent_kafka import Producer  # noqa: E402

from kafkaproof.pytest_plugin import _start  # noqa: E402


def first_ack(bootstrap: str, topic: str) -> None:
    """A new client's first acknowledged produce (acks=all)."""
    done = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0})
    producer.produce(topic, b"ready?", on_delivery=lambda err, msg: done.append(err))
    producer.flush(30)
    if done != [None]:
        raise RuntimeError(f"the first produce failed: {done}")


def ready_for_a_test(brokers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        broker = _start(tmp, brokers)
        try:
            first_ack(broker.bootstrap, broker.new_topic())
            return time.perf_counter() - t0
        finally:
            broker.cluster.stop()


def floor(brokers: int, runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        broker = _start(tmp, brokers)
        try:
            topic = broker.new_topic()
            first_ack(broker.bootstrap, topic)  # warm: the topic exists and has a leader
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                first_ack(broker.bootstrap, topic)
                times.append(time.perf_counter() - t0)
            return statistics.median(times)
        finally:
            broker.cluster.stop()


def import_cost() -> float:
    """Once per test process: importing the broker, over a bare interpreter's start."""
    def run(code: str) -> float:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - t0

    return statistics.median(run("import kafkaproof.impl.net.server") - run("pass") for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for brokers in (1, 3):
        ready = statistics.median(ready_for_a_test(brokers) for _ in range(args.runs))
        base = floor(brokers, args.runs)
        report(f"ready_for_a_test_{brokers}_broker{'s' if brokers > 1 else ''}", ready, "s (aim <= 0.5)")
        report(f"floor_running_broker_{brokers}", base, "s (a new client's first produce to a running broker)")
        report(f"ratio_to_floor_{brokers}", ready / base)
    report("import_once_per_process", import_cost(), "s (the first test of a session pays it)")
    report("peak_rss", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
