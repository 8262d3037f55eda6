"""One log segment: `<base offset, 20 digits>.log` with its `.index` and `.timeindex`.

As the seed notes say, naming files by their first offset makes lookup cheap: offset
2049 lives in `00000000000000002048.log` when that is the last base offset <= 2049.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from kafkaproof.impl.protocol.errors import CorruptRecordError
from kafkaproof.impl.protocol.records import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    BatchHeader,
    check_batch,
    parse_header,
)
from kafkaproof.impl.storage.disk import Disk, FileRegion
from kafkaproof.impl.storage.index import CorruptIndexError, OffsetIndex, TimeIndex
from kafkaproof.impl.storage.txn_index import TxnIndex

LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX = ".log", ".index", ".timeindex", ".txnindex"
SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)
MAX_RELATIVE_OFFSET = (1 << 31) - 1  # index entries hold offsets relative to the base as int32
# Followers and consumers read on from where their last read ended; remembering where
# recent batches start spares a scan from the last sparse index entry (Kafka has the
# page-cached mmap of the index for the same purpose).
RECENT_STARTS = 64
_BASE_AND_LENGTH = struct.Struct(">qi")
_LAST_DELTA = struct.Struct(">i")
_HEAD = struct.Struct(">qiiBiHi")  # base offset .. last offset delta: the 27 bytes a walk needs


def segment_file_name(base_offset: int, suffix: str = LOG_SUFFIX) -> str:
    return f"{base_offset:020d}{suffix}"


@dataclass(frozen=True)
class Truncation:
    """Bytes recovery cut from a segment, and why."""

    file: str
    position: int
    dropped_bytes: int
    kind: str  # "torn-tail": an incomplete last write; "corrupt": a complete but invalid batch
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: dropped {self.dropped_bytes} bytes from position {self.position} ({self.kind}: {self.reason})"


class LogSegment:
    def __init__(self, disk: Disk, dir: str, base_offset: int, index_interval_bytes: int,
                 now_ms: int, *, create: bool = False) -> None:
        self._disk = disk
        self.base_offset = base_offset
        self.log_path = f"{dir}/{segment_file_name(base_offset)}"
        self._index_interval = index_interval_bytes
        if create:
            disk.create(self.log_path)
            for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                disk.create(f"{dir}/{segment_file_name(base_offset, suffix)}")
        self.index = OffsetIndex(disk, f"{dir}/{segment_file_name(base_offset, INDEX_SUFFIX)}", base_offset)
        self.time_index = TimeIndex(disk, f"{dir}/{segment_file_name(base_offset, TIME_INDEX_SUFFIX)}", base_offset)
        self.txn_index = TxnIndex(disk, f"{dir}/{segment_file_name(base_offset, TXN_INDEX_SUFFIX)}")
        self.size = disk.size(self.log_path)
        self.next_offset = base_offset
        self.max_timestamp = -1
        self.offset_of_max_timestamp = -1
        self.first_batch_timestamp = -1  # what log.roll.ms is measured from (Kafka: rollingBasedTimestamp)
        self.created_ms = now_ms
        self._bytes_since_index = 0
        self._starts: OrderedDict[int, int] = OrderedDict()  # base offset -> position

    def _remember(self, base_offset: int, pos: int) -> None:
        self._starts[base_offset] = pos
        if len(self._starts) > RECENT_STARTS:
            self._starts.popitem(last=False)

    # -- reading headers ------------------------------------------------------------------

    def _header_at(self, pos: int) -> BatchHeader:
        return parse_header(self._disk.read(self.log_path, pos, HEADER_SIZE))

    def batches(self, pos: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each batch from `pos`; headers only, no CRC check."""
        while pos < self.size:
            try:
                header = self._header_at(pos)
            except CorruptRecordError as exc:
                raise CorruptRecordError(exc.reason, pos) from None
            if pos + header.size > self.size:
                raise CorruptRecordError(
                    f"truncated batch: header says {header.size} bytes, {self.size - pos} present", pos
                )
            yield pos, header
            pos += header.size

    def _note_batch(self, header: BatchHeader) -> None:
        if self.first_batch_timestamp < 0:
            self.first_batch_timestamp = header.max_timestamp
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = header.last_offset
        self.next_offset = header.next_offset

    # -- opening --------------------------------------------------------------------------

    def load(self) -> None:
        """Open a segment below the recovery point: trust its data, check its index, and
        scan only from the last index entry to find the end. Raises if anything is off."""
        self.index.check(self.size)
        _, start = self.index.lookup(self.index.last_offset)
        ts, offset = self.time_index.lookup(1 << 62)
        self.max_timestamp, self.offset_of_max_timestamp = ts, (offset if ts >= 0 else -1)
        first = next(self.batches(0), None)
        if first is not None:
            self.first_batch_timestamp = first[1].max_timestamp
        for _, header in self.batches(start):
            self._note_batch(header)

    def recover(self) -> tuple[int, Truncation | None]:
        """Validate every batch (CRC, magic, offsets), rebuild both indexes, and cut the
        segment at the first invalid batch. Returns (valid batches, what was cut)."""
        self.index.reset()
        self.time_index.reset()
        self._bytes_since_index = 0
        self.next_offset, self.max_timestamp, self.offset_of_max_timestamp = self.base_offset, -1, -1
        self.first_batch_timestamp = -1
        pos, valid, problem = 0, 0, None
        while pos < self.size:
            raw = self._disk.read(self.log_path, pos, min(self.size - pos, HEADER_SIZE))
            try:
                header = parse_header(raw)
                raw = self._disk.read(self.log_path, pos, header.size)
                check_batch(raw)
                if header.base_offset < self.next_offset:
                    raise CorruptRecordError(
                        f"base offset {header.base_offset} is below the expected {self.next_offset}"
                    )
                if header.last_offset - self.base_offset > MAX_RELATIVE_OFFSET:
                    raise CorruptRecordError(f"offset {header.last_offset} too far from segment base")
            except CorruptRecordError as exc:
                problem = exc.reason
                break
            self._note_batch(header)
            self._index_batch(pos, header)
            pos += header.size
            valid += 1
        if problem is None:
            return valid, None
        # An invalid batch that would end past EOF is an interrupted last write; one that
        # is complete but wrong, with or without bytes after it, is corruption.
        try:
            torn = pos + parse_header(self._disk.read(self.log_path, pos, HEADER_SIZE)).size > self.size
        except CorruptRecordError as exc:
            torn = "truncated" in exc.reason
        cut = Truncation(self.log_path, pos, self.size - pos, "torn-tail" if torn else "corrupt", problem)
        self.truncate_at_position(pos)
        return valid, cut

    # -- writing --------------------------------------------------------------------------

    def _index_batch(self, pos: int, header: BatchHeader) -> None:
        # Kafka's LogSegment.append: one index entry per index.interval.bytes of batches;
        # call after _note_batch, so the time index gets the max timestamp so far.
        if self._bytes_since_index > self._index_interval:
            self.index.append(header.last_offset, pos)
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index = 0
        self._bytes_since_index += header.size

    def append(self, data: bytes | bytearray, headers: list[tuple[int, BatchHeader]]) -> None:
        """Append batches already validated and given offsets; `headers` holds each batch's
        position relative to the start of `data`."""
        start = self._disk.append(self.log_path, data)
        for rel, header in headers:
            self._note_batch(header)
            self._index_batch(start + rel, header)
            self._remember(header.base_offset, start + rel)
        self.size = start + len(data)

    def on_roll(self) -> None:
        """A segment that stops being active records its largest timestamp (as Kafka does)."""
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)

    def translate(self, offset: int) -> tuple[int, BatchHeader] | None:
        """Position and header of the first batch whose last offset is >= `offset`."""
        if offset >= self.next_offset:
            return None
        pos = self._starts.get(offset)
        if pos is not None:
            return pos, self._header_at(pos)
        _, pos = self.index.lookup(offset)
        for p, header in self.batches(pos):
            if header.last_offset >= offset:
                return p, header
        return None

    def read(self, offset: int, max_bytes: int, max_offset: int | None, min_one: bool,
             region: bool = False) -> bytes | FileRegion:
        """Whole batches from the one holding `offset`, up to `max_bytes` (at least one
        batch if `min_one`, KIP-74), excluding batches that reach `max_offset`. With
        `region` (a disk with files), where they lie instead of the bytes: only the batch
        headers are read."""
        found = self.translate(offset)
        if found is None:
            return b""
        start, first = found
        if max_offset is not None and first.last_offset >= max_offset:
            return b""
        if first.size > max_bytes:
            if not min_one:
                return b""
            return (self._disk.region(self.log_path, start, first.size, first.last_offset) if region
                    else self._disk.read(self.log_path, start, first.size))
        limit = min(max_bytes, self.size - start)
        # Whole batches that qualify: from one read of up to max_bytes, or header by header.
        buf = None if region else self._disk.read(self.log_path, start, limit)
        if buf is not None:
            limit = len(buf)  # what the file really held
        pos, next_offset = 0, offset
        while pos + HEADER_SIZE <= limit:
            head = buf if buf is not None else self._disk.read(self.log_path, start + pos, _HEAD.size)
            at = pos if buf is not None else 0
            # Only (base offset, length, last offset delta) are needed: skip building a header.
            base, length = _BASE_AND_LENGTH.unpack_from(head, at)
            size, last = length + LOG_OVERHEAD, base + _LAST_DELTA.unpack_from(head, at + 23)[0]
            if length < 0 or pos + size > limit or (max_offset is not None and last >= max_offset):
                break
            pos += size
            next_offset = last + 1
        if start + pos < self.size:
            self._remember(next_offset, start + pos)
        if region:
            return self._disk.region(self.log_path, start, pos, next_offset - 1) if pos else b""
        return buf[:pos]

    def truncate_to(self, offset: int) -> int:
        """Drop every batch whose last offset is >= `offset`; returns bytes dropped."""
        found = self.translate(offset)
        if found is None:
            return 0
        dropped = self.size - found[0]
        self.truncate_at_position(found[0])
        return dropped

    def truncate_at_position(self, pos: int) -> None:
        self._disk.truncate(self.log_path, pos)
        self.size = pos
        self._starts.clear()
        # Recompute what the cut invalidated: indexes and the end offset and timestamps.
        last_offset = self.base_offset - 1
        self.max_timestamp = self.offset_of_max_timestamp = self.first_batch_timestamp = -1
        for _, header in self.batches(0):
            last_offset = header.last_offset
            self._note_batch(header)
        self.next_offset = last_offset + 1
        self.index.truncate_to(self.next_offset)
        self.time_index.truncate_to(self.next_offset)
        self.txn_index.truncate_to(self.next_offset)

    def flush(self) -> None:
        self._disk.fsync(self.log_path)
        self.index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def delete(self) -> None:
        for path in (self.log_path, self.index.path, self.time_index.path, self.txn_index.path):
            if self._disk.exists(path):
                self._disk.delete(path)


__all__ = ["LogSegment", "Truncation", "CorruptIndexError", "segment_file_name", "SEGMENT_SUFFIXES"]
