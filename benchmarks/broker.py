"""The real broker's throughput against what the machine itself can do, in one run.

Baselines, measured first in the same run: raw loopback TCP (one process writes 1 MiB
chunks to another) and raw sequential disk writes (1 MiB writes, one fsync at the end).
Then `kafkaproof serve --brokers 3` in its own process and librdkafka (confluent-kafka)
as the client: produce MB/s for 1 KiB and 100 KiB messages, acks=1 and acks=all,
replication factor 1 and 3 (and 500 KB messages, acks=all RF=3, in messages/s too), and
consume MB/s; each as a ratio to both baselines.
RabbitMQ (Debian rabbitmq-server, pika) with the same message size, if it is installed
and starts. Then the broker's RSS as its log grows (its data lives on disk) and peaks.

    python benchmarks/broker.py [--mb 64]
Aims: produce acks=all RF=3 >= 0.25 of the disk figure; consume >= 0.5 of loopback.
"""

import argparse
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report  # noqa: E402

CHUNK = 1 << 20


def _sink(port_queue) -> None:
    server = socket.create_server(("127.0.0.1", 0))
    port_queue.put(server.getsockname()[1])
    conn, _ = server.accept()
    while conn.recv(CHUNK):
        pass


def loopback_mb_s(total_mb: int) -> float:
    q = multiprocessing.Queue()
    p = multiprocessing.Process(target=_sink, args=(q,))
    p.start()
    s = socket.create_connection(("127.0.0.1", q.get()))
    data = b"x" * CHUNK
    t0 = time.perf_counter()
    for _ in range(total_mb):
        s.sendall(data)
    s.close()
    p.join()
    return total_mb * CHUNK / 1e6 / (time.perf_counter() - t0)


def disk_mb_s(directory: str, total_mb: int) -> float:
    path = os.path.join(directory, "raw")
    data = b"x" * CHUNK
    t0 = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(total_mb):
            f.write(data)
        f.flush()
        os.fsync(f.fileno())
    elapsed = time.perf_counter() - t0
    os.unlink(path)
    return total_mb * CHUNK / 1e6 / elapsed


def rss_of(pid: int, field: str = "VmRSS") -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1e3
    return float("nan")


def start_serve(data_dir: str) -> tuple[subprocess.Popen, str]:
    p = subprocess.Popen([sys.executable, "-m", "kafkaproof", "serve", "--brokers", "3", "--port", "0",
                          "--data-dir", data_dir, "--log-level", "WARNING", "--set", "queued.max.requests=500"],
                         stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    return p, line.strip().split("=", 1)[1]


def produce_mb_s(bootstrap: str, topic: str, size: int, total_mb: int, acks: str, **security) -> float:
    """`security`: more librdkafka settings (security.protocol, ssl.ca.location, ...)."""
    from confluent_kafka import Producer

    p = Producer({**security, "bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5, "batch.size": 1 << 20,
                  "queue.buffering.max.kbytes": 1 << 20, "message.max.bytes": 1 << 20,
                  "enable.idempotence": acks == "all"})
    value = os.urandom(size)
    n = total_mb * CHUNK // size
    errors = []
    # Warm up: connections, metadata and (idempotence) the producer id take ~0.5 s of
    # librdkafka's timers that a throughput figure should not count.
    p.produce(topic, value)
    p.flush(30)
    t0 = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                p.produce(topic, value, on_delivery=lambda e, m: e and errors.append(e))
                break
            except BufferError:
                p.poll(0.01)
        p.poll(0)
    p.flush(120)
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} produce errors, first: {errors[0]}")
    return n * size / 1e6 / elapsed


def produce_python_client_mb_s(bootstrap: str, topic: str, size: int, total_mb: int) -> float:
    """The same with kafka-python (pure Python), the like of pika for RabbitMQ."""
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5, batch_size=1 << 20,
                      max_request_size=1 << 21)
    value = os.urandom(size)
    p.send(topic, value).get(30)
    n = total_mb * CHUNK // size
    t0 = time.perf_counter()
    for _ in range(n):
        p.send(topic, value)
    p.flush(120)
    elapsed = time.perf_counter() - t0
    p.close()
    return n * size / 1e6 / elapsed


def consume_mb_s(bootstrap: str, topic: str, expect_bytes: int, **security) -> float:
    from confluent_kafka import Consumer

    c = Consumer({**security, "bootstrap.servers": bootstrap, "group.id": f"bench-{topic}", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False, "fetch.max.bytes": 50 << 20})
    c.subscribe([topic])
    got, t0 = 0, None
    deadline = time.monotonic() + 300
    while got < expect_bytes and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        if t0 is None:
            t0 = time.perf_counter()
        got += len(m.value())
    elapsed = time.perf_counter() - t0
    c.close()
    return got / 1e6 / elapsed


def rabbitmq_mb_s(size: int, total_mb: int) -> float | None:
    """Publish with publisher confirms (RabbitMQ's acks) to a durable queue, via pika."""
    if shutil.which("rabbitmq-server") is None:
        return None
    try:
        import pika
    except ImportError:
        return None
    try:
        conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", connection_attempts=2))
    except Exception:
        return None
    ch = conn.channel()
    ch.queue_declare("bench", durable=True)
    ch.confirm_delivery()
    value = os.urandom(size)
    n = total_mb * CHUNK // size
    t0 = time.perf_counter()
    for _ in range(n):
        ch.basic_publish("", "bench", value)
    elapsed = time.perf_counter() - t0
    ch.queue_delete("bench")
    conn.close()
    return n * size / 1e6 / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=64, help="MiB per produce measurement")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="kafkaproof-bench-")
    loop = loopback_mb_s(max(args.mb * 4, 256))
    disk = disk_mb_s(work, max(args.mb * 2, 128))
    report("baseline: loopback TCP", loop, "MB/s")
    report("baseline: sequential disk write (+ one fsync)", disk, "MB/s")
    serve, bootstrap = start_serve(os.path.join(work, "data"))
    try:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = {f"rf{rf}-{size}-{acks}": (rf, size, acks) for rf in (1, 3) for size in (1024, 100 * 1024)
                  for acks in ("1", "all")}
        topics["rf3-500000-all"] = (3, 500_000, "all")  # issue 17 measured 2-3 messages/s of this size
        for f in admin.create_topics([NewTopic(t, 1, rf) for t, (rf, _, _) in topics.items()]).values():
            f.result(30)
        rss_start = rss_of(serve.pid)
        written = 0
        for topic, (rf, size, acks) in topics.items():
            mb_s = produce_mb_s(bootstrap, topic, size, args.mb, acks)
            written += args.mb
            name = f"produce {size // 1024} KiB acks={acks} RF={rf}"
            report(name, mb_s, "MB/s")
            report(f"{name} / disk", mb_s / disk)
            report(f"{name} / loopback", mb_s / loop)
            if size >= 500_000:
                report(f"{name}: messages per second", mb_s * 1e6 / size)
        python_client = produce_python_client_mb_s(bootstrap, "rf1-1024-1", 1024, min(args.mb, 16))
        report("produce 1 KiB acks=1 RF=1 with kafka-python (pure Python client)", python_client, "MB/s")
        for topic in ("rf3-1024-all", "rf3-102400-all", "rf3-500000-all"):
            mb_s = consume_mb_s(bootstrap, topic, args.mb * CHUNK * 9 // 10)
            size = int(topic.split("-")[1])
            report(f"consume {size} B messages RF=3", mb_s, "MB/s")
            report(f"consume {size} B messages / loopback", mb_s / loop)
            if size >= 500_000:
                report(f"consume {size} B messages: messages per second", mb_s * 1e6 / size)
        report(f"serve RSS at start ({rss_start:.0f} MB) -> after {written} MiB written x RF",
               rss_of(serve.pid), "MB")
        report("serve peak RSS (3 brokers, controller, one process)", rss_of(serve.pid, "VmHWM"), "MB")
    finally:
        serve.terminate()
        serve.wait(60)
    rabbit = rabbitmq_mb_s(1024, min(args.mb, 16))
    if rabbit is None:
        print("rabbitmq: not measured (rabbitmq-server or pika not installed, or not running)")
    else:
        report("rabbitmq publish 1 KiB, confirms, durable queue (pika)", rabbit, "MB/s")
        report("kafkaproof (kafka-python, acks=1) / rabbitmq (pika, confirms)", python_client / rabbit)
    report("benchmark process peak RSS", peak_rss_mb(), "MB")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
