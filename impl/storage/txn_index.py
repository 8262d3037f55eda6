"""The aborted-transaction index, laid out as Kafka's `.txnindex` file beside each segment.

34-byte entries (Kafka's AbortedTxn, version 0), big-endian:
    version int16, producerId int64, firstOffset int64, lastOffset int64, lastStableOffset int64
`lastOffset` is the offset of the ABORT marker. A read_committed fetch is answered with
the aborted transactions that overlap what it returns, so the consumer can drop their
records (Kafka's Fetcher does this on the client side, and so does ours).
Entries live on disk; a lookup reads the file, so memory does not grow with the log.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from kafkaproof.impl.storage.disk import Disk

_ENTRY = struct.Struct(">hqqqq")
VERSION = 0


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int  # the ABORT marker
    last_stable_offset: int = -1


class TxnIndex:
    def __init__(self, disk: Disk, path: str) -> None:
        self._disk = disk
        self.path = path
        if not disk.exists(path):
            disk.create(path)
        size = disk.size(path)
        if size % _ENTRY.size:  # a torn last entry: drop it (recovery rebuilds from the log)
            disk.truncate(path, size - size % _ENTRY.size)

    def entries(self) -> list[AbortedTxn]:
        data = self._disk.read(self.path, 0, self._disk.size(self.path))
        return [AbortedTxn(*_ENTRY.unpack_from(data, i)[1:]) for i in range(0, len(data), _ENTRY.size)]

    def append(self, txn: AbortedTxn) -> None:
        self._disk.append(self.path, _ENTRY.pack(VERSION, *txn))

    def truncate_to(self, offset: int) -> None:
        """Forget aborts whose marker is at or after `offset` (the log was cut there)."""
        keep = [t for t in self.entries() if t.last_offset < offset]
        self._disk.truncate(self.path, len(keep) * _ENTRY.size)

    def rewrite(self, txns: list[AbortedTxn]) -> None:
        self._disk.truncate(self.path, 0)
        for t in txns:
            self.append(t)

    def flush(self) -> None:
        self._disk.fsync(self.path)

    def delete(self) -> None:
        self._disk.delete(self.path)
