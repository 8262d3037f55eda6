"""Append and read throughput of the segmented log on RealDisk, as ratios to plain
os.write / os.pread of the same bytes in the same run, plus memory as the log grows.

    python benchmarks/storage.py [--mb 512] [--rounds 3]

Aim (issue 2): append >= 0.7 of plain write. No fsync on either side: Kafka's default.
Files go to tmpfs (/dev/shm) unless BENCH_DIR names another place: on a shared VM disk,
dirty-page writeback makes wall-clock ratios swing tenfold between rounds, which
measures the disk, not this code.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _util import peak_rss_mb, report, rss_mb  # noqa: E402
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch, parse_header  # noqa: E402
from kafkaproof.impl.storage import Log, LogConfig, RealDisk  # noqa: E402

MiB = 1 << 20


def one_mib_batch() -> bytes:
    value = os.urandom(1000)
    records = [SimpleRecord(value, key=b"k%d" % i, timestamp=i) for i in range(1030)]
    return encode_batch(records)  # just under 1 MiB, under message.max.bytes


def plain_write(dir: str, batch: bytes, n: int, name: str = "plain.bin") -> float:
    # A new file, as the log's: rewriting a truncated file reuses just-freed pages
    # and would flatter the baseline.
    path = os.path.join(dir, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
    t0 = time.perf_counter()
    for _ in range(n):
        os.write(fd, batch)
    elapsed = time.perf_counter() - t0
    os.close(fd)
    return elapsed


def log_append(dir: str, batch: bytes, n: int, rss_marks: list | None = None) -> tuple[float, Log]:
    log = Log.open(RealDisk(dir), "bench-0", LogConfig(segment_bytes=256 * MiB))
    t0 = time.perf_counter()
    for i in range(n):
        log.append_as_leader(batch, leader_epoch=0, now_ms=i)
        if rss_marks is not None and (i + 1) % max(1, n // 4) == 0:
            rss_marks.append((i + 1, rss_mb()))
    return time.perf_counter() - t0, log


def plain_read(dir: str, size: int) -> float:
    fd = os.open(os.path.join(dir, "plain.bin"), os.O_RDONLY)
    t0 = time.perf_counter()
    pos = 0
    while pos < size:
        pos += len(os.pread(fd, MiB, pos))
    elapsed = time.perf_counter() - t0
    os.close(fd)
    return elapsed


def log_read(log: Log) -> float:
    t0 = time.perf_counter()
    offset = log.log_start_offset
    while offset < log.log_end_offset:
        data = log.read(offset, max_bytes=MiB)
        pos = 0  # a consumer's next fetch starts after the last batch it got
        while pos < len(data):
            header = parse_header(data, pos)
            pos += header.size
        offset = header.next_offset
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="MiB written per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batch = one_mib_batch()
    n = args.mb
    size = n * len(batch)
    append_ratios, read_ratios, log_mbps, plain_mbps, rlog_mbps, rplain_mbps = [], [], [], [], [], []
    marks: list = []
    where = os.environ.get("BENCH_DIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    print(f"directory: {where or tempfile.gettempdir()}")
    for r in range(args.rounds):
        # plain, log, plain again: the log is compared with the mean of the plain runs
        # around it, and each run deletes its files first, so that all three start with
        # the same free memory (tmpfs page allocation is most of the cost).
        t_plain, rt_plain = [], []
        for step in ("plain", "log", "plain"):
            with tempfile.TemporaryDirectory(dir=where) as tmp:
                if step == "plain":
                    t_plain.append(plain_write(tmp, batch, n))
                    rt_plain.append(plain_read(tmp, size))
                else:
                    t_log, log = log_append(tmp, batch, n, marks if r == 0 else None)
                    rt_log = log_read(log)
                    log.close()
        t_p, rt_p = sum(t_plain) / 2, sum(rt_plain) / 2
        log_mbps.append(size / MiB / t_log)
        plain_mbps.append(size / MiB / t_p)
        append_ratios.append(t_p / t_log)
        rlog_mbps.append(size / MiB / rt_log)
        rplain_mbps.append(size / MiB / rt_p)
        read_ratios.append(rt_p / rt_log)
    med = statistics.median
    report("batch_bytes", len(batch))
    report("append_log_MBps", med(log_mbps), "MiB/s")
    report("append_plain_write_MBps", med(plain_mbps), "MiB/s")
    report("append_ratio_vs_plain_write", med(append_ratios), "(aim >= 0.7)")
    report("append_ratio_min", min(append_ratios))
    report("append_ratio_max", max(append_ratios))
    report("read_log_MBps", med(rlog_mbps), "MiB/s")
    report("read_plain_pread_MBps", med(rplain_mbps), "MiB/s")
    report("read_ratio_vs_plain_pread", med(read_ratios))
    for written, rss in marks:
        report(f"rss_after_{written}_MiB_appended", rss, "MB")
    report("peak_rss", peak_rss_mb(), "MB")


if __name__ == "__main__":
    main()
