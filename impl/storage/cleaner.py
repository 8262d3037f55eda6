"""Log compaction (cleanup.policy=compact), after Kafka's LogCleaner.

A pass over the cleanable part of a log - whole segments below the active one and below
`upto` (the last stable offset, so nothing uncommitted or undecided is judged) - keeps,
for every key, only its latest record: an offset map is built over the dirty part (what
no pass has cleaned yet), and every segment of the cleanable part is rewritten without
the records it supersedes. Offsets never change (a thinned batch keeps its base and last
offset), order is kept, the active segment is never touched. A tombstone (null value) is
itself removed once it has been through one pass and is older than delete.retention.ms
(Kafka's delete horizon, KIP-534). Transactional and control batches are kept whole: the
transaction index and read_committed stay right (Kafka would remove aborted data too).
A producer's last batch is kept, emptied if need be, so its sequence state survives.

Crash safety is Kafka's swap protocol: the new segment is written as `N.log.cleaned` and
fsynced, renamed to `N.log.swap`, the old segment's files are deleted, and the swap is
renamed to `N.log`. Recovery (Log.open) deletes a `.cleaned` file (the pass had not
finished writing) and completes a `.swap` (it is whole; the old files may be gone).
"""

from __future__ import annotations

from dataclasses import dataclass

from kafkaproof.impl.protocol.records import RecordBatch, decode_batch, rebuild_batch
from kafkaproof.impl.storage.segment import (
    INDEX_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
    segment_file_name,
)

CLEANED, SWAP = ".cleaned", ".swap"


@dataclass(frozen=True)
class CleanResult:
    segments: int  # rewritten
    removed: int  # records removed
    first_dirty: int  # where the next pass's dirty part starts


def dirty_ratio(log, upto: int) -> float:
    """Bytes not yet cleaned over all cleanable bytes (min.cleanable.dirty.ratio's measure)."""
    cleanable = _cleanable(log, upto)
    total = sum(s.size for s in cleanable)
    dirty = sum(s.size for s in cleanable if s.next_offset > log.first_dirty)
    return dirty / total if total else 0.0


def _cleanable(log, upto: int) -> list[LogSegment]:
    # (below the active segment is below the recovery point too: a roll flushes; said
    # anyway, since a record may only go once what supersedes it is on disk)
    end = min(log.active.base_offset, upto, log.recovery_point)
    return [s for s in log.segments[:-1] if s.next_offset <= end and s.size > 0]


def _batches(log, seg: LogSegment) -> list[tuple[RecordBatch, bytes]]:
    data = log._disk.read(seg.log_path, 0, seg.size)
    out, pos = [], 0
    while pos < len(data):
        b = decode_batch(data, pos)
        out.append((b, data[pos:pos + b.header.size]))
        pos += b.header.size
    return out


def _kept_whole(b: RecordBatch) -> bool:
    return b.header.is_control or b.header.is_transactional


def clean(log, now_ms: int, upto: int) -> CleanResult | None:
    """One pass over the cleanable segments; None when there is nothing dirty to clean."""
    cleanable = _cleanable(log, upto)
    if not any(s.next_offset > log.first_dirty for s in cleanable):
        return None
    end = cleanable[-1].next_offset
    contents = {s.base_offset: _batches(log, s) for s in cleanable}
    latest: dict[bytes, int] = {}  # the offset map: key -> its latest offset in the dirty part
    last_of_producer: dict[int, int] = {}  # producer id -> base offset of its last batch
    for batches in contents.values():
        for b, _ in batches:
            if b.header.producer_id >= 0:
                last_of_producer[b.header.producer_id] = b.header.base_offset
            if _kept_whole(b):
                continue
            for r in b.records:
                if r.offset >= log.first_dirty:
                    latest[r.key] = r.offset
    horizon = now_ms - log.config.delete_retention_ms
    removed, rewritten = 0, 0
    for seg in cleanable:
        out, changed = bytearray(), False
        for b, raw in contents[seg.base_offset]:
            if _kept_whole(b):
                kept = b.records
            else:
                kept = [r for r in b.records if latest.get(r.key, -1) <= r.offset
                        and not (r.value is None and r.offset < log.first_dirty and b.header.max_timestamp < horizon)]
            removed += len(b.records) - len(kept)
            if len(kept) == len(b.records):
                out += raw
            else:
                changed = True
                if kept or last_of_producer.get(b.header.producer_id) == b.header.base_offset:
                    out += rebuild_batch(b.header, kept)
        if changed:
            _swap_in(log, seg, bytes(out), now_ms)
            rewritten += 1
    log.first_dirty = end
    return CleanResult(rewritten, removed, end)


def _swap_in(log, old: LogSegment, data: bytes, now_ms: int) -> None:
    disk, base = log._disk, old.base_offset
    cleaned = f"{old.log_path}{CLEANED}"
    disk.create(cleaned)
    if data:
        disk.append(cleaned, data)
    disk.fsync(cleaned)
    disk.rename(cleaned, old.log_path + SWAP)
    complete_swap(disk, log.dir, base)
    seg = LogSegment(disk, log.dir, base, log.config.index_interval_bytes, now_ms)
    seg.recover()  # rebuilds both indexes from the new data
    seg.flush()
    log.segments[log.segments.index(old)] = seg


def complete_swap(disk, dir: str, base: int) -> None:
    """`N.log.swap` replaces segment N: its old files go, the swap becomes `N.log`. (The
    transaction index stays: transactional batches are kept whole.)"""
    for suffix in (".log", INDEX_SUFFIX, TIME_INDEX_SUFFIX):
        path = f"{dir}/{segment_file_name(base, suffix)}"
        if disk.exists(path):
            disk.delete(path)
    disk.rename(f"{dir}/{segment_file_name(base)}{SWAP}", f"{dir}/{segment_file_name(base)}")
