"""Sparse offset and time indexes, laid out as Kafka's `.index` and `.timeindex` files.

`.index`:     8-byte entries (relative offset int32, file position int32), big-endian.
`.timeindex`: 12-byte entries (timestamp int64, relative offset int32).

Entries live on disk and lookups binary-search the file, so a broker's memory does
not grow with its log (Kafka memory-maps the same files for the same reason).
Only the last entry is kept in memory, to validate appends.
"""

from __future__ import annotations

import struct

from kafkaproof.impl.storage.disk import Disk


class CorruptIndexError(ValueError):
    """An index file that is not a valid index; it is rebuilt from the log."""


class _Index:
    ENTRY: struct.Struct

    def __init__(self, disk: Disk, path: str, base_offset: int) -> None:
        self._disk = disk
        self.path = path
        self.base_offset = base_offset
        if not disk.exists(path):
            disk.create(path)
        size = disk.size(path)
        # A torn index write leaves a partial entry: drop it and have `check` ask for a rebuild.
        self.damaged = size % self.ENTRY.size != 0
        if self.damaged:
            disk.truncate(path, size - size % self.ENTRY.size)
        self.entries = size // self.ENTRY.size
        self._last = self._entry(self.entries - 1) if self.entries else None

    def _entry(self, i: int) -> tuple[int, int]:
        return self.ENTRY.unpack(self._disk.read(self.path, i * self.ENTRY.size, self.ENTRY.size))

    @property
    def size_bytes(self) -> int:
        return self.entries * self.ENTRY.size

    def _search(self, key_of, target: int) -> int:
        """Index of the last entry whose key <= target, or -1."""
        lo, hi = 0, self.entries - 1
        found = -1
        while lo <= hi:
            mid = (lo + hi) // 2
            if key_of(self._entry(mid)) <= target:
                found, lo = mid, mid + 1
            else:
                hi = mid - 1
        return found

    def _append(self, entry: tuple[int, int]) -> None:
        self._disk.append(self.path, self.ENTRY.pack(*entry))
        self.entries += 1
        self._last = entry

    def _truncate_entries(self, keep: int) -> None:
        if keep < self.entries:
            self._disk.truncate(self.path, keep * self.ENTRY.size)
            self.entries = keep
            self._last = self._entry(keep - 1) if keep else None

    def reset(self) -> None:
        self._truncate_entries(0)
        self.damaged = False

    def flush(self) -> None:
        self._disk.fsync(self.path)

    def delete(self) -> None:
        self._disk.delete(self.path)


class OffsetIndex(_Index):
    ENTRY = struct.Struct(">ii")

    @property
    def last_offset(self) -> int:
        return self.base_offset + self._last[0] if self._last else self.base_offset

    def append(self, offset: int, position: int) -> None:
        if self._last is not None and offset <= self.last_offset:
            raise CorruptIndexError(f"{self.path}: offset {offset} not above last entry {self.last_offset}")
        self._append((offset - self.base_offset, position))

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry at or below `offset`; (base, 0) if none."""
        i = self._search(lambda e: e[0], offset - self.base_offset)
        if i < 0:
            return self.base_offset, 0
        rel, pos = self._entry(i)
        return self.base_offset + rel, pos

    def truncate_to(self, offset: int) -> None:
        """Remove entries for offsets >= `offset`."""
        self._truncate_entries(self._search(lambda e: e[0], offset - self.base_offset - 1) + 1)

    def check(self, log_size: int) -> None:
        """Kafka's sanityCheck: entries increase and point inside the log."""
        if self.damaged:
            raise CorruptIndexError(f"{self.path}: size was not a multiple of {self.ENTRY.size}")
        prev = (-1, -1)
        for i in range(self.entries):
            rel, pos = self._entry(i)
            if rel <= prev[0] or pos < prev[1] or pos >= max(log_size, 1):
                raise CorruptIndexError(f"{self.path}: entry {i} ({rel}, {pos}) is out of order or past the log")
            prev = (rel, pos)


class TimeIndex(_Index):
    ENTRY = struct.Struct(">qi")

    @property
    def last_timestamp(self) -> int:
        return self._last[0] if self._last else -1

    def maybe_append(self, timestamp: int, offset: int) -> None:
        if timestamp > self.last_timestamp:
            self._append((timestamp, offset - self.base_offset))

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """(timestamp, offset) of the last entry with timestamp <= `timestamp`."""
        i = self._search(lambda e: e[0], timestamp)
        if i < 0:
            return -1, self.base_offset
        ts, rel = self._entry(i)
        return ts, self.base_offset + rel

    def truncate_to(self, offset: int) -> None:
        keep = self.entries
        while keep and self._entry(keep - 1)[1] + self.base_offset >= offset:
            keep -= 1
        self._truncate_entries(keep)
