"""The segmented log: layout, lookup, roll, reads, truncation, retention, epochs, recovery."""

import random

import pytest
from kafkaproof.impl.protocol.errors import CorruptRecordError, ErrorCode, KafkaError
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch
from kafkaproof.impl.storage import Log, LogConfig, LogDirError, RealDisk, SimDisk
from kafkaproof.impl.storage.checkpoint import CheckpointError
from kafkaproof.impl.storage.disk import read_whole

DIR = "topic-0"


def batch(*values, ts=0):
    return encode_batch([SimpleRecord(v, timestamp=ts) for v in values])


def fill(log, n, epoch=0, per_batch=1, ts=None):
    for i in range(0, n, per_batch):
        vals = [f"v{log.log_end_offset + j}".encode() for j in range(min(per_batch, n - i))]
        log.append_as_leader(batch(*vals, ts=log.log_end_offset if ts is None else ts), epoch)


def values(log):
    """Every value in the log. A read stops at a segment's end, as Kafka's does."""
    out, offset = [], log.log_start_offset
    while offset < log.log_end_offset:
        records = log.read_records(offset, max_bytes=1 << 30)
        assert records, f"no progress reading at {offset}"
        out += [r.value for r in records]
        offset = records[-1].offset + 1
    return out


@pytest.fixture(params=["sim", "real"])
def disk(request, tmp_path):
    return SimDisk() if request.param == "sim" else RealDisk(str(tmp_path))


def test_segments_are_named_by_20_digit_base_offset_and_2049_lives_in_2048(disk):
    log = Log.open(disk, DIR, LogConfig(segment_bytes=2048 * 60))
    fill(log, 4000, per_batch=16)
    log.roll()
    # force the seed notes' example: a segment starting at 2048
    log2 = Log.open(SimDisk(), DIR, LogConfig())
    fill(log2, 2048, per_batch=64)
    log2.roll()
    fill(log2, 100, per_batch=10)
    names = log2._disk.listdir(DIR)
    assert "00000000000000002048.log" in names and "00000000000000002048.index" in names
    assert "00000000000000002048.timeindex" in names and "leader-epoch-checkpoint" in names
    assert log2.segment_for(2049).base_offset == 2048
    assert log2.segment_for(2047).base_offset == 0
    assert log2.read_records(2049)[0].value == b"v2049"
    assert all(len(n.split(".")[0]) == 20 for n in disk.listdir(DIR) if n[0].isdigit())


def test_roll_by_size_and_by_time(disk):
    log = Log.open(disk, DIR, LogConfig(segment_bytes=500, roll_ms=1000))
    fill(log, 30)
    bases = [s.base_offset for s in log.segments]
    assert len(bases) > 3 and all(s.size <= 500 for s in log.segments)
    timed = Log.open(SimDisk(), DIR, LogConfig(roll_ms=1000))
    fill(timed, 3, ts=0)
    fill(timed, 1, ts=1001)  # more than log.roll.ms after the segment's first batch
    assert [s.base_offset for s in timed.segments] == [0, 3]


def test_index_entries_are_sparse_and_reads_use_them(disk):
    log = Log.open(disk, DIR, LogConfig(index_interval_bytes=256))
    fill(log, 500)
    seg = log.active
    assert 0 < seg.index.entries < 500 // 2
    assert seg.time_index.entries > 0
    for target in (0, 1, 77, 255, 256, 499):
        off, pos = seg.index.lookup(target)
        assert off <= target
        assert log.read_records(target)[0].offset == target
    seg.index.check(seg.size)


def test_read_limits_min_one_and_high_watermark(disk):
    log = Log.open(disk, DIR)
    fill(log, 10, per_batch=2)
    one = log.read(0, max_bytes=1)  # KIP-74: at least one whole batch
    assert len(one) > 1 and len(log.read(0, max_bytes=1, min_one=False)) == 0
    # a batch that reaches max_offset (the high watermark) is not served at all
    assert [r.offset for r in log.read_records(3, max_offset=5)] == [3]
    assert [r.offset for r in log.read_records(0, max_offset=6)] == [0, 1, 2, 3, 4, 5]
    assert log.read(10) == b""  # at the log end: nothing yet, not an error
    with pytest.raises(KafkaError) as exc:
        log.read(11)
    assert exc.value.code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_truncate_removes_whole_batches_and_later_segments(disk):
    log = Log.open(disk, DIR, LogConfig(segment_bytes=400))
    fill(log, 40, per_batch=2)
    n_segments = len(log.segments)
    log.truncate_to(21)  # batch 20-21 holds 21: it goes
    assert log.log_end_offset == 20 and values(log) == [f"v{i}".encode() for i in range(20)]
    assert len(log.segments) < n_segments
    assert all(not disk.exists(s) for s in [f"{DIR}/{b:020d}.log" for b in range(21, 40)])
    fill(log, 5)
    assert values(log)[-5:] == [f"v{i}".encode() for i in range(20, 25)]
    log.truncate_to(0)
    assert log.log_end_offset == 0 and values(log) == []


def test_retention_by_bytes_and_time_moves_the_log_start(disk):
    log = Log.open(disk, DIR, LogConfig(segment_bytes=300, retention_bytes=700, retention_ms=10_000))
    fill(log, 40)
    deleted = log.delete_old_segments(now_ms=0)
    assert deleted and log.size_bytes <= 700 + log.segments[0].size
    assert log.log_start_offset == log.segments[0].base_offset > 0
    with pytest.raises(KafkaError, match="OFFSET_OUT_OF_RANGE"):
        log.read(0)
    timed = Log.open(SimDisk(), DIR, LogConfig(segment_bytes=300, retention_ms=10))
    fill(timed, 20)
    assert timed.delete_old_segments(now_ms=10_000)
    assert len(timed.segments) == 1  # the active segment is never deleted


def test_log_start_moves_inside_a_segment_and_a_reopen_keeps_it(disk):
    """DeleteRecords: the log start may fall inside the first segment; what lies below
    it is gone for readers, and the broker's log-start-offset-checkpoint brings it back
    after a restart (the segment alone would say 0)."""
    log = Log.open(disk, DIR, LogConfig(segment_bytes=300))
    fill(log, 30)
    first, second = log.segments[0].base_offset, log.segments[1].base_offset
    inside = second + 1
    assert log.advance_start(inside) == [first]  # the segment wholly below is deleted
    assert log.log_start_offset == inside and log.segments[0].base_offset == second
    with pytest.raises(KafkaError, match="OFFSET_OUT_OF_RANGE"):
        log.read(inside - 1)
    with pytest.raises(KafkaError, match="OFFSET_OUT_OF_RANGE"):
        log.advance_start(log.log_end_offset + 1)
    assert log.advance_start(inside - 1) == []  # never backwards
    log.close()
    again = Log.open(disk, DIR, LogConfig(segment_bytes=300), log_start_offset=inside)
    assert again.log_start_offset == inside and again.log_end_offset == 30


def test_compact_only_topics_are_not_trimmed_by_retention(disk):
    log = Log.open(disk, DIR, LogConfig(segment_bytes=300, retention_ms=10, cleanup_policy=("compact",)))
    for i in range(20):
        log.append_as_leader(encode_batch([SimpleRecord(b"v", key=str(i).encode(), timestamp=0)]), 0)
    assert log.delete_old_segments(now_ms=10_000) == [] and log.log_start_offset == 0


def test_log_append_time_replaces_the_batch_timestamp_and_keeps_the_crc_valid(disk):
    log = Log.open(disk, DIR, LogConfig(timestamp_type="LogAppendTime"))
    log.append_as_leader(batch(b"a", b"b", ts=5), 0, now_ms=777)
    [b] = list(log.iter_batches())  # decoding checks the CRC
    assert b.header.timestamp_type == 1 and b.header.max_timestamp == 777
    assert [r.timestamp for r in b.records] == [777, 777]


def test_leader_epoch_checkpoint_in_kafka_text_format(disk):
    log = Log.open(disk, DIR)
    fill(log, 3, epoch=0)
    fill(log, 2, epoch=2)
    fill(log, 2, epoch=5)
    assert read_whole(disk, f"{DIR}/leader-epoch-checkpoint") == b"0\n3\n0 0\n2 3\n5 5\n"
    assert log.epochs.end_offset_for(2, log.log_end_offset) == (2, 5)
    assert log.epochs.end_offset_for(3, log.log_end_offset) == (2, 5)  # KIP-279: floor epoch
    assert log.epochs.end_offset_for(5, log.log_end_offset) == (5, 7)
    assert log.epochs.end_offset_for(9, log.log_end_offset) == (-1, -1)
    log.truncate_to(4)
    assert log.epochs.entries == [(0, 0), (2, 3)]
    reopened = Log.open(disk, DIR, recovery_point=0)
    assert reopened.epochs.entries == [(0, 0), (2, 3)]


def test_follower_append_keeps_offsets_and_rejects_going_backwards():
    leader = Log.open(SimDisk(), "l")
    fill(leader, 6, epoch=3, per_batch=2)
    follower = Log.open(SimDisk(), "f")
    follower.append_as_follower(leader.read(0, max_bytes=1 << 20))
    assert values(follower) == values(leader) and follower.epochs.entries == [(3, 0)]
    with pytest.raises(KafkaError, match="out of order offsets"):
        follower.append_as_follower(leader.read(2))


def test_oversized_batch_is_rejected_and_nothing_is_written():
    log = Log.open(SimDisk(), DIR, LogConfig(max_message_bytes=200, segment_bytes=1000))
    fill(log, 2)
    with pytest.raises(KafkaError) as exc:
        log.append_as_leader(batch(b"x" * 300), 0)
    assert exc.value.code == ErrorCode.MESSAGE_TOO_LARGE
    with pytest.raises(KafkaError) as exc:
        log.append_as_leader(b"".join(batch(b"y" * 100) for _ in range(10)), 0)
    assert exc.value.code == ErrorCode.RECORD_LIST_TOO_LARGE
    assert log.log_end_offset == 2 and values(log) == [b"v0", b"v1"]


def test_append_rejects_corrupt_input_and_writes_nothing():
    log = Log.open(SimDisk(), DIR)
    raw = bytearray(batch(b"a", b"b"))
    raw[-1] ^= 0x40
    with pytest.raises(CorruptRecordError, match="CRC mismatch"):
        log.append_as_leader(raw, 0)
    with pytest.raises(CorruptRecordError, match="truncated"):
        log.append_as_leader(batch(b"a")[:-3], 0)
    assert log.log_end_offset == 0 and log.active.size == 0


# --- recovery ----------------------------------------------------------------------------


def test_clean_reopen_loads_without_scanning(disk):
    log = Log.open(disk, DIR, LogConfig(segment_bytes=500))
    fill(log, 50)
    log.close()
    again = Log.open(disk, DIR, LogConfig(segment_bytes=500), recovery_point=log.recovery_point)
    r = again.last_recovery
    assert r.segments_recovered == 0 and r.segments_loaded == len(again.segments) and r.batches_validated == 0
    assert r.truncations == [] and values(again) == values(log)


def test_unflushed_tail_after_the_recovery_point_is_still_validated():
    disk = SimDisk()
    log = Log.open(disk, DIR, LogConfig(flush_interval_messages=5))
    fill(log, 12)  # flushed up to 10
    again = Log.open(disk, DIR, recovery_point=log.recovery_point)
    assert again.last_recovery.segments_recovered == 1 and again.last_recovery.batches_validated == 12


def test_torn_tail_is_cut_and_fsynced_data_survives():
    disk = SimDisk()
    log = Log.open(disk, DIR, LogConfig(flush_interval_messages=5))
    fill(log, 12)  # 0-9 fsynced by policy, 10-11 not
    assert log.recovery_point == 10
    for seed in range(40):
        d = SimDisk()
        log = Log.open(d, DIR, LogConfig(flush_interval_messages=5))
        fill(log, 12)
        d.power_loss(random.Random(seed))
        again = Log.open(d, DIR, recovery_point=10)
        assert values(again) == [f"v{i}".encode() for i in range(10)]
        for t in again.last_recovery.truncations:
            assert t.kind == "torn-tail" and t.position == log.active.size - 2 * len(batch(b"v10"))


def test_corruption_in_the_middle_is_cut_and_reported_with_what_followed():
    disk = SimDisk()
    log = Log.open(disk, DIR, LogConfig(segment_bytes=600))
    fill(log, 40)
    log.close()
    seg = log.segments[1]
    disk.corrupt(seg.log_path, 100, 101, random.Random(0))  # inside the second batch or so
    later = [s.log_path for s in log.segments[2:]]
    again = Log.open(disk, DIR, LogConfig(segment_bytes=600), recovery_point=0)
    report = again.last_recovery
    assert len(report.truncations) == 1
    cut = report.truncations[0]
    assert cut.kind == "corrupt" and cut.file == seg.log_path and cut.position <= 100
    assert cut.dropped_bytes == seg.size - cut.position
    assert [name for name, _ in report.deleted_segments] == later
    assert report.dropped_bytes == cut.dropped_bytes + sum(n for _, n in report.deleted_segments)
    assert any("deleted segment" in line for line in report.lines())
    assert values(again) == [f"v{i}".encode() for i in range(again.log_end_offset)]


def test_garbage_segment_is_cut_to_nothing_and_reported(disk):
    disk.mkdirs(DIR)
    disk.create(f"{DIR}/00000000000000000000.log")
    disk.append(f"{DIR}/00000000000000000000.log", bytes(random.Random(1).randbytes(5000)))
    log = Log.open(disk, DIR)
    assert log.log_end_offset == 0
    assert log.last_recovery.truncations[0].dropped_bytes == 5000
    fill(log, 3)  # and the log is usable again
    assert values(log) == [b"v0", b"v1", b"v2"]


def test_wrong_file_names_are_a_clear_error(disk):
    disk.mkdirs(DIR)
    disk.create(f"{DIR}/2048.log")
    with pytest.raises(LogDirError, match=r"2048.log: segment files must be named by their 20-digit base offset"):
        Log.open(disk, DIR)


def test_leftovers_and_orphan_indexes_are_removed_and_unknown_files_ignored(disk):
    log = Log.open(disk, DIR)
    fill(log, 3)
    log.close()
    for name in ("00000000000000000000.log.cleaned", "00000000000000000099.index", "notes.txt"):
        disk.create(f"{DIR}/{name}")
    again = Log.open(disk, DIR, recovery_point=3)
    assert sorted(again.last_recovery.deleted_files) == [
        f"{DIR}/00000000000000000000.log.cleaned", f"{DIR}/00000000000000000099.index"]
    assert again.last_recovery.ignored_files == [f"{DIR}/notes.txt"]
    assert values(again) == [b"v0", b"v1", b"v2"]


def test_a_swap_left_by_the_cleaner_replaces_its_segment(disk):
    """The cleaner fsyncs a segment's new content as N.log.swap before deleting the old
    files: a swap found at opening is whole and is put in place (cleaner.py)."""
    log = Log.open(disk, DIR)
    fill(log, 3)
    log.close()
    kept = read_whole(disk, f"{DIR}/00000000000000000000.log")[: len(batch(b"v0"))]  # the first batch alone
    disk.create(f"{DIR}/00000000000000000000.log.swap")
    disk.append(f"{DIR}/00000000000000000000.log.swap", kept)
    again = Log.open(disk, DIR)
    assert again.last_recovery.completed_swaps == [f"{DIR}/00000000000000000000.log.swap"]
    assert values(again) == [b"v0"] and not disk.exists(f"{DIR}/00000000000000000000.log.swap")


def test_damaged_index_is_rebuilt(disk):
    log = Log.open(disk, DIR, LogConfig(index_interval_bytes=50, segment_bytes=600))
    fill(log, 30)
    log.close()
    first = log.segments[0]
    disk.append(first.index.path, b"\x01\x02\x03")  # a torn index entry
    again = Log.open(disk, DIR, LogConfig(index_interval_bytes=50, segment_bytes=600),
                     recovery_point=log.recovery_point)
    assert again.last_recovery.rebuilt_indexes == [first.index.path]
    assert again.segments[0].index.entries > 0
    assert values(again) == values(log)


def test_corrupt_epoch_checkpoint_is_a_clear_error(disk):
    log = Log.open(disk, DIR)
    fill(log, 1)
    disk.create(f"{DIR}/leader-epoch-checkpoint")
    disk.append(f"{DIR}/leader-epoch-checkpoint", b"0\n2\n1 0\n")
    with pytest.raises(CheckpointError, match="header says 2 entries, found 1"):
        Log.open(disk, DIR)


def test_flush_policy_by_time():
    disk = SimDisk()
    log = Log.open(disk, DIR, LogConfig(flush_interval_ms=100))
    fill(log, 3)
    assert not log.maybe_flush(now_ms=50)
    assert log.maybe_flush(now_ms=100) and log.recovery_point == 3
    disk.power_loss(random.Random(0))
    assert values(Log.open(disk, DIR, recovery_point=3)) == [b"v0", b"v1", b"v2"]
