"""A partition's log: a directory of segments named by base offset, plus its leader epochs.

Durability follows Kafka: nothing is fsynced on append unless
`log.flush.interval.messages` / `log.flush.interval.ms` say so, except that rolling
a segment flushes the ones before it (Kafka schedules that flush at roll; here it
happens at once, so the sans-IO core stays free of background tasks).
`recovery_point` is the offset below which everything is known to be on disk;
opening a log validates every batch from the segment holding it to the end.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from kafkaproof.impl.protocol.errors import CorruptRecordError, ErrorCode, KafkaError
from kafkaproof.impl.protocol.messages import MAX_TIMESTAMP
from kafkaproof.impl.protocol.records import (
    BatchHeader,
    ControlRecordType,
    Record,
    RecordBatch,
    check_batch,
    decode_batch,
    parse_control_record,
    parse_header,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)
from kafkaproof.impl.storage.cleaner import CLEANED, SWAP, complete_swap
from kafkaproof.impl.storage.config import LogConfig
from kafkaproof.impl.storage.disk import Disk, FileRegion
from kafkaproof.impl.storage.epoch_cache import FILE_NAME as EPOCH_FILE
from kafkaproof.impl.storage.epoch_cache import LeaderEpochCache
from kafkaproof.impl.storage.index import CorruptIndexError
from kafkaproof.impl.storage.segment import (
    LOG_SUFFIX,
    MAX_RELATIVE_OFFSET,
    SEGMENT_SUFFIXES,
    LogSegment,
    Truncation,
)
from kafkaproof.impl.storage.txn_index import AbortedTxn

# Files Kafka may leave half-done in a partition directory; removed on open.
LEFTOVER_SUFFIXES = (".tmp", ".deleted", CLEANED)  # (a .swap is completed, not removed: cleaner.py)
KNOWN_FILES = (EPOCH_FILE, "partition.metadata")


class LogDirError(ValueError):
    """A partition directory that cannot be opened as a log; names the offending file."""


@dataclass
class RecoveryReport:
    """What opening a log found and changed. Empty lists mean nothing was lost."""

    dir: str
    segments_loaded: int = 0
    segments_recovered: int = 0
    batches_validated: int = 0
    truncations: list[Truncation] = field(default_factory=list)
    deleted_segments: list[tuple[str, int]] = field(default_factory=list)  # (file, bytes)
    deleted_files: list[str] = field(default_factory=list)
    rebuilt_indexes: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    completed_swaps: list[str] = field(default_factory=list)  # a cleaner pass interrupted after its fsync

    @property
    def dropped_bytes(self) -> int:
        return sum(t.dropped_bytes for t in self.truncations) + sum(n for _, n in self.deleted_segments)

    def lines(self) -> list[str]:
        out = [
            f"{self.dir}: {self.segments_loaded} segments loaded, {self.segments_recovered} recovered,"
            f" {self.batches_validated} batches validated, {self.dropped_bytes} bytes dropped"
        ]
        out += [f"  truncated {t}" for t in self.truncations]
        out += [
            f"  deleted segment {name} ({n} bytes) after the corruption above" for name, n in self.deleted_segments
        ]
        out += [f"  rebuilt index of {name}" for name in self.rebuilt_indexes]
        out += [f"  removed leftover file {name}" for name in self.deleted_files]
        out += [f"  ignored unknown file {name}" for name in self.ignored_files]
        out += [f"  completed the cleaner's swap {name}" for name in self.completed_swaps]
        return out


@dataclass(frozen=True)
class AppendInfo:
    first_offset: int
    last_offset: int
    max_timestamp: int
    batches: int
    size: int
    headers: tuple[BatchHeader, ...] = ()  # as written: offsets and epoch assigned


class Log:
    def __init__(self, disk: Disk, dir: str, config: LogConfig, segments: list[LogSegment],
                 now_ms: int) -> None:
        self._disk = disk
        self.dir = dir
        self.config = config
        self.segments = segments
        self._bases = [s.base_offset for s in segments]
        self.log_start_offset = segments[0].base_offset
        self.first_dirty = self.log_start_offset  # the cleaner's progress (Kafka's cleaner-offset-checkpoint)
        self.recovery_point = self.log_end_offset
        self.last_flush_ms = now_ms
        self.epochs = LeaderEpochCache(disk, dir)
        self.last_recovery = RecoveryReport(dir)

    # -- opening and recovery -------------------------------------------------------------

    @classmethod
    def open(cls, disk: Disk, dir: str, config: LogConfig | None = None, *,
             recovery_point: int = 0, now_ms: int = 0, log_start_offset: int = 0) -> Log:
        """Open (or create) the log in `dir`. Segments at or after the one holding
        `recovery_point` are validated batch by batch; the report is `last_recovery`.
        `log_start_offset` (Kafka's log-start-offset-checkpoint) keeps records deleted
        inside the first segment (DeleteRecords) deleted."""
        config = config or LogConfig()
        disk.mkdirs(dir)
        report = RecoveryReport(dir)
        bases = _scan_dir(disk, dir, report)
        segments = [LogSegment(disk, dir, b, config.index_interval_bytes, now_ms) for b in bases]
        first_to_recover = max(0, bisect.bisect_right(bases, recovery_point) - 1)
        recovered: list[LogSegment] = []
        for i, seg in enumerate(segments):
            if i <= first_to_recover:
                # Below the recovery point everything was fsynced: load without validating.
                # The segment holding the point is validated unless it ends at or below it.
                try:
                    seg.load()
                    if i < first_to_recover or seg.next_offset <= recovery_point:
                        report.segments_loaded += 1
                        continue
                except (CorruptIndexError, CorruptRecordError):
                    if i < first_to_recover:
                        report.rebuilt_indexes.append(seg.index.path)
            valid, cut = seg.recover()
            recovered.append(seg)
            report.segments_recovered += 1
            report.batches_validated += valid
            if cut is not None:
                report.truncations.append(cut)
            nxt = segments[i + 1].base_offset if i + 1 < len(segments) else None
            if cut is not None or (nxt is not None and nxt < seg.next_offset):
                for later in segments[i + 1 :]:
                    report.deleted_segments.append((later.log_path, later.size))
                    later.delete()
                segments = segments[: i + 1]
                break
        if not segments:
            segments = [LogSegment(disk, dir, 0, config.index_interval_bytes, now_ms, create=True)]
        # Recovered bytes may exist only in the page cache (after a process crash): make
        # them durable, so that `recovery_point` never claims more than the disk holds.
        for seg in recovered:
            if seg in segments:
                seg.flush()
        log = cls(disk, dir, config, segments, now_ms)
        log.log_start_offset = min(max(log.log_start_offset, log_start_offset), log.log_end_offset)
        log.epochs.truncate_from_end(log.log_end_offset)
        log.epochs.truncate_from_start(log.log_start_offset)
        log.last_recovery = report
        return log

    # -- state ----------------------------------------------------------------------------

    @property
    def active(self) -> LogSegment:
        return self.segments[-1]

    @property
    def log_end_offset(self) -> int:
        return self.active.next_offset

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def unflushed_messages(self) -> int:
        return self.log_end_offset - self.recovery_point

    # -- appending ------------------------------------------------------------------------

    def _validate(self, data: bytes | bytearray, from_client: bool = True) -> list[tuple[int, BatchHeader]]:
        """Every batch complete, magic 2, CRC valid, within size limits (Kafka's LogValidator).
        A replica's copy may hold batches the cleaner thinned (fewer records than offsets)."""
        if len(data) > self.config.segment_bytes:
            raise KafkaError(
                ErrorCode.RECORD_LIST_TOO_LARGE,
                f"{len(data)} bytes exceed log.segment.bytes={self.config.segment_bytes}",
            )
        headers = []
        pos = 0
        while pos < len(data):
            header = check_batch(data, pos)
            if header.size > self.config.max_message_bytes:
                raise KafkaError(
                    ErrorCode.MESSAGE_TOO_LARGE,
                    f"batch of {header.size} bytes exceeds message.max.bytes={self.config.max_message_bytes}",
                )
            if from_client and header.record_count != header.last_offset_delta + 1 and not header.is_control:
                raise CorruptRecordError(
                    f"record count {header.record_count} does not match lastOffsetDelta"
                    f" {header.last_offset_delta}", pos,
                )
            headers.append((pos, header))
            pos += header.size
        if not headers:
            raise KafkaError(ErrorCode.INVALID_RECORD, "no record batch to append")
        return headers

    def append_as_leader(self, data: bytes | bytearray, leader_epoch: int, now_ms: int = 0) -> AppendInfo:
        """Validate, assign offsets from the log end and stamp the leader epoch."""
        headers = self._validate(data)
        if "compact" in self.config.cleanup_policy:
            for pos, header in headers:  # Kafka's LogValidator: compaction needs a key to keep
                if not header.is_control and any(r.key is None for r in decode_batch(data, pos).records):
                    raise KafkaError(ErrorCode.INVALID_RECORD, "Compacted topic cannot accept message without key")
        buf = bytearray(data)
        offset = self.log_end_offset
        stamped = []
        log_time = self.config.timestamp_type == "LogAppendTime"
        for pos, header in headers:
            set_base_offset(buf, pos, offset)
            set_partition_leader_epoch(buf, pos, leader_epoch)
            if log_time and not header.is_control:
                set_log_append_time(buf, pos, now_ms)
                header = parse_header(buf, pos)
            stamped.append((pos, header._replace(base_offset=offset, partition_leader_epoch=leader_epoch)))
            offset += header.last_offset_delta + 1
        self.epochs.assign(leader_epoch, self.log_end_offset)
        return self._append(buf, stamped, now_ms)

    def append_as_follower(self, data: bytes | bytearray, now_ms: int = 0) -> AppendInfo:
        """Append batches that already carry the leader's offsets and epochs."""
        headers = self._validate(data, from_client=False)
        expected = self.log_end_offset
        for pos, header in headers:
            if header.base_offset < expected:
                raise KafkaError(
                    ErrorCode.UNKNOWN_SERVER_ERROR,
                    f"out of order offsets: batch at {pos} starts at {header.base_offset},"
                    f" expected at least {expected}",
                )
            expected = header.next_offset
        for _, header in headers:
            self.epochs.assign(header.partition_leader_epoch, header.base_offset)
        return self._append(data, headers, now_ms)

    def _append(self, data: bytes | bytearray, headers: list[tuple[int, BatchHeader]], now_ms: int) -> AppendInfo:
        first, last = headers[0][1].base_offset, headers[-1][1].last_offset
        max_ts = max(h.max_timestamp for _, h in headers)
        if self._should_roll(len(data), max_ts, last, now_ms):
            self.roll(now_ms, base_offset=first)
        self.active.append(data, headers)
        if self.unflushed_messages >= self.config.flush_interval_messages:
            self.flush(now_ms=now_ms)
        return AppendInfo(first, last, max_ts, len(headers), len(data), tuple(h for _, h in headers))

    def _should_roll(self, size: int, max_ts: int, last_offset: int, now_ms: int) -> bool:
        seg, cfg = self.active, self.config
        if seg.size == 0:
            return False
        waited = max_ts - seg.first_batch_timestamp if seg.first_batch_timestamp >= 0 else now_ms - seg.created_ms
        return (
            seg.size > cfg.segment_bytes - size
            or waited > cfg.roll_ms
            or seg.index.size_bytes + seg.index.ENTRY.size > cfg.max_index_size
            or seg.time_index.size_bytes + seg.time_index.ENTRY.size > cfg.max_index_size
            or last_offset - seg.base_offset > MAX_RELATIVE_OFFSET
        )

    def roll(self, now_ms: int = 0, base_offset: int | None = None) -> LogSegment:
        """Start a new active segment at the log end; flush everything before it."""
        base = self.log_end_offset if base_offset is None else max(base_offset, self.log_end_offset)
        if self.active.size == 0 and self.active.base_offset == base:
            return self.active
        self.active.on_roll()
        seg = LogSegment(self._disk, self.dir, base, self.config.index_interval_bytes, now_ms, create=True)
        self.segments.append(seg)
        self._bases.append(base)
        self.flush(up_to=base, now_ms=now_ms)
        return seg

    # -- durability -----------------------------------------------------------------------

    def flush(self, up_to: int | None = None, now_ms: int | None = None) -> None:
        """fsync every segment holding offsets in [recovery_point, up_to)."""
        up_to = self.log_end_offset if up_to is None else min(up_to, self.log_end_offset)
        if now_ms is not None:
            self.last_flush_ms = now_ms
        if up_to <= self.recovery_point:
            return
        for seg in self.segments:
            if seg.next_offset > self.recovery_point and seg.base_offset < up_to:
                seg.flush()
        self.recovery_point = up_to

    def maybe_flush(self, now_ms: int) -> bool:
        """The time-based flush policy (`log.flush.interval.ms`), called by the owner's timer."""
        interval = self.config.flush_interval_ms
        if interval is None or self.unflushed_messages == 0 or now_ms - self.last_flush_ms < interval:
            return False
        self.flush(now_ms=now_ms)
        return True

    def delete(self) -> None:
        """The partition left this broker for good (its topic was deleted): every file goes."""
        for name in self._disk.listdir(self.dir):
            self._disk.delete(f"{self.dir}/{name}")
        if hasattr(self._disk, "rmdir"):
            self._disk.rmdir(self.dir)

    def close(self) -> None:
        """Clean shutdown: everything durable, the active segment's last timestamp indexed."""
        self.active.on_roll()
        self.flush()
        for seg in self.segments:
            seg.flush()

    # -- reading --------------------------------------------------------------------------

    def _check_range(self, offset: int) -> None:
        if not self.log_start_offset <= offset <= self.log_end_offset:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {offset} is outside the log [{self.log_start_offset}, {self.log_end_offset}]",
            )

    def segment_for(self, offset: int) -> LogSegment:
        """The segment whose base offset is the largest one <= `offset` (binary search)."""
        return self.segments[max(0, bisect.bisect_right(self._bases, offset) - 1)]

    def read(self, offset: int, max_bytes: int = 1 << 20, max_offset: int | None = None,
             min_one: bool = True, region: bool = False) -> bytes | FileRegion:
        """Raw bytes of whole batches starting with the one that holds `offset`; stops
        before any batch reaching `max_offset` (the high watermark, for consumers).
        `region`: where those bytes lie in their file instead, if the disk has files."""
        self._check_range(offset)
        region = region and hasattr(self._disk, "region")
        i = max(0, bisect.bisect_right(self._bases, offset) - 1)
        for seg in self.segments[i:]:
            data = seg.read(offset, max_bytes, max_offset, min_one, region)
            if data or (seg.next_offset > offset and seg.size > 0):  # (the cleaner may leave a segment empty)
                return data
        return b""

    def iter_batches(self, max_offset: int | None = None, start: int = 0) -> Iterator[RecordBatch]:
        """Every batch from the log start (or from the one holding `start`), across segments
        (a single `read` stops at a segment's end), up to the last batch wholly below `max_offset`."""
        offset = max(start, self.log_start_offset)
        end = self.log_end_offset if max_offset is None else max_offset
        while offset < end:
            data = self.read(offset, 1 << 20, max_offset=max_offset)
            if not data:
                return
            pos = 0
            while pos < len(data):
                batch = decode_batch(data, pos)
                pos += batch.header.size
                offset = batch.header.next_offset
                yield batch

    def offset_for_timestamp(self, timestamp: int, max_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record below `max_offset` whose timestamp is at
        least `timestamp` - or, for MAX_TIMESTAMP (-3), of the record with the largest
        timestamp - None if there is none (Kafka's UNKNOWN_OFFSET). Batches whose
        max_timestamp is earlier are skipped without looking at their records (Kafka
        starts from the .timeindex; a linear pass over batch headers here)."""
        best: tuple[int, int] | None = None
        for batch in self.iter_batches(max_offset=max_offset):
            if batch.header.is_control:
                continue
            if timestamp == MAX_TIMESTAMP:
                for r in batch.records:
                    if best is None or r.timestamp > best[1]:
                        best = (r.offset, r.timestamp)
            elif batch.header.max_timestamp >= timestamp:
                return next(((r.offset, r.timestamp) for r in batch.records if r.timestamp >= timestamp), None)
        return best

    def read_records(self, offset: int, max_bytes: int = 1 << 20, max_offset: int | None = None) -> list[Record]:
        """Decoded records at offsets >= `offset` (a read starts at a batch boundary)."""
        data = self.read(offset, max_bytes, max_offset)
        out: list[Record] = []
        pos = 0
        while pos < len(data):
            batch = decode_batch(data, pos)
            out += [r for r in batch.records if r.offset >= offset]
            pos += batch.header.size
        return out

    def marker(self, header: BatchHeader) -> tuple[ControlRecordType, int]:
        """(type, coordinator epoch) of the transaction marker that `header` heads."""
        batch = decode_batch(self.read(header.base_offset, header.size))
        return parse_control_record(batch.records[0])

    # -- aborted transactions (.txnindex) -------------------------------------------------

    def append_aborted(self, txn: AbortedTxn) -> None:
        self.segment_for(txn.last_offset).txn_index.append(txn)

    def aborted_transactions(self, start: int, end: int) -> list[AbortedTxn]:
        """Aborted transactions with data in [start, end): their marker is at or after
        `start`, so they are indexed in the segment holding `start` or a later one (a long
        transaction's marker may be several segments on: no early stop)."""
        out: list[AbortedTxn] = []
        i = max(0, bisect.bisect_right(self._bases, start) - 1)
        for seg in self.segments[i:]:
            out += [t for t in seg.txn_index.entries() if t.last_offset >= start and t.first_offset < end]
        return out

    def rewrite_aborted(self, txns: list[AbortedTxn]) -> None:
        """Recovery: make the index say what the log says (an index write may not have
        survived a crash that the marker did, or the other way round)."""
        for seg in self.segments:
            mine = [t for t in txns if self.segment_for(t.last_offset) is seg]
            if [t[:3] for t in seg.txn_index.entries()] != [t[:3] for t in mine]:
                seg.txn_index.rewrite(mine)

    def batch_headers(self):
        """Every batch header from the log start (for rebuilding producer state)."""
        for seg in self.segments:
            for _, header in seg.batches():
                if header.last_offset >= self.log_start_offset:
                    yield header

    # -- truncation and retention ---------------------------------------------------------

    def truncate_to(self, offset: int) -> int:
        """Drop every batch whose last offset is >= `offset` (a follower reconciling with
        its leader). The cut is fsynced: a power loss must not bring truncated data back.
        Returns the bytes dropped."""
        if offset >= self.log_end_offset:
            return 0
        if offset < self.log_start_offset:
            dropped = self.size_bytes
            self.truncate_fully_and_start_at(offset)
            return dropped
        dropped = 0
        while len(self.segments) > 1 and self.active.base_offset > offset:
            dropped += self.active.size
            self._remove_last()
        dropped += self.active.truncate_to(offset)
        self.active.flush()
        self.recovery_point = min(self.recovery_point, self.log_end_offset)
        self.epochs.truncate_from_end(self.log_end_offset)
        return dropped

    def truncate_fully_and_start_at(self, offset: int, now_ms: int = 0) -> None:
        for seg in self.segments:
            seg.delete()
        self.segments = [LogSegment(self._disk, self.dir, offset, self.config.index_interval_bytes, now_ms, create=True)]
        self._bases = [offset]
        self.log_start_offset = self.recovery_point = offset
        self.epochs.truncate_from_end(-1)

    def _remove_last(self) -> None:
        self.segments.pop().delete()
        self._bases.pop()

    def delete_old_segments(self, now_ms: int) -> list[int]:
        """Retention: delete the oldest inactive segments that break `log.retention.ms` or
        `log.retention.bytes`; the log start offset moves up. Returns deleted base offsets."""
        cfg, n = self.config, 0  # n: how many of the oldest segments go (never the active one)
        if "delete" not in cfg.cleanup_policy:
            return []  # cleanup.policy=compact: the cleaner, not retention, removes records
        while cfg.retention_ms >= 0 and n < len(self.segments) - 1:
            seg = self.segments[n]
            newest = seg.max_timestamp if seg.max_timestamp >= 0 else seg.created_ms
            if now_ms - newest <= cfg.retention_ms:
                break
            n += 1
        if cfg.retention_bytes >= 0:
            excess = self.size_bytes - sum(s.size for s in self.segments[:n]) - cfg.retention_bytes
            while n < len(self.segments) - 1 and excess - self.segments[n].size >= 0:
                excess -= self.segments[n].size
                n += 1
        return self.advance_start(self.segments[n].base_offset) if n else []

    def advance_start(self, offset: int) -> list[int]:
        """Move the log start offset up to `offset` (DeleteRecords, retention, a leader's
        log start learnt by a follower): segments wholly below it are deleted. Returns
        their base offsets."""
        if offset <= self.log_start_offset:
            return []
        if offset > self.log_end_offset:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE,
                             f"offset {offset} is beyond the log end {self.log_end_offset}")
        deleted = []
        while len(self.segments) > 1 and self.segments[1].base_offset <= offset:
            seg = self.segments.pop(0)
            self._bases.pop(0)
            deleted.append(seg.base_offset)
            seg.delete()
        self.log_start_offset = offset
        self.recovery_point = max(self.recovery_point, offset)
        self.epochs.truncate_from_start(offset)
        return deleted


def _scan_dir(disk: Disk, dir: str, report: RecoveryReport) -> list[int]:
    """Base offsets of the segments in `dir`; removes leftovers, completes the cleaner's
    swaps, rejects misnamed files."""
    for name in disk.listdir(dir):
        stem = name.removesuffix(LOG_SUFFIX + SWAP)
        if name.endswith(LOG_SUFFIX + SWAP) and len(stem) == 20 and stem.isdigit():
            complete_swap(disk, dir, int(stem))
            report.completed_swaps.append(f"{dir}/{name}")
    names = disk.listdir(dir)
    bases, stems_with_log = [], set()
    for name in names:
        path = f"{dir}/{name}"
        if name.endswith(LEFTOVER_SUFFIXES):
            disk.delete(path)
            report.deleted_files.append(path)
            continue
        stem, _, ext = name.partition(".")
        suffix = "." + ext
        if suffix in SEGMENT_SUFFIXES:
            if len(stem) != 20 or not stem.isdigit():
                raise LogDirError(
                    f"{path}: segment files must be named by their 20-digit base offset,"
                    f" like 00000000000000002048{suffix}"
                )
            if suffix == LOG_SUFFIX:
                bases.append(int(stem))
                stems_with_log.add(stem)
        elif name not in KNOWN_FILES and not disk.isdir(path):
            report.ignored_files.append(path)
    for name in names:  # an index whose segment is gone is rebuilt from nothing: drop it
        stem, _, ext = name.partition(".")
        if "." + ext in SEGMENT_SUFFIXES and ext != "log" and stem not in stems_with_log and disk.exists(f"{dir}/{name}"):
            disk.delete(f"{dir}/{name}")
            report.deleted_files.append(f"{dir}/{name}")
    return sorted(bases)
