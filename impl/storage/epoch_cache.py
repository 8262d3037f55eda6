"""Leader epoch -> start offset, persisted as `leader-epoch-checkpoint` (KIP-101).

A follower that becomes leader-less or restarts asks the leader "where does my
latest epoch end?" (OffsetsForLeaderEpoch) and truncates there, instead of to
its high watermark, which is what lost data before KIP-101.
"""

from __future__ import annotations

from kafkaproof.impl.storage.checkpoint import CheckpointError, read_checkpoint, write_checkpoint
from kafkaproof.impl.storage.disk import Disk

UNDEFINED_EPOCH = -1
UNDEFINED_EPOCH_OFFSET = -1
FILE_NAME = "leader-epoch-checkpoint"


class LeaderEpochCache:
    def __init__(self, disk: Disk, dir: str) -> None:
        self._disk = disk
        self._path = f"{dir}/{FILE_NAME}"
        entries = read_checkpoint(disk, self._path, 2)
        try:
            self.entries: list[tuple[int, int]] = [(int(e), int(o)) for e, o in entries]
        except ValueError:
            raise CheckpointError(f"{self._path}: epoch and offset must be integers") from None
        for (e1, o1), (e2, o2) in zip(self.entries, self.entries[1:], strict=False):
            if not (e2 > e1 and o2 >= o1):
                raise CheckpointError(f"{self._path}: entries not increasing: {e1} {o1} then {e2} {o2}")

    @property
    def latest_epoch(self) -> int:
        return self.entries[-1][0] if self.entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int) -> None:
        """Record that `epoch` starts at `start_offset` (no-op if it is already the latest)."""
        if epoch < 0 or (self.entries and self.entries[-1][0] == epoch):
            return
        # Drop entries a new epoch makes impossible (Kafka: maybeTruncateNonMonotonicEntries).
        kept = [(e, o) for e, o in self.entries if e < epoch and o < start_offset]
        self.entries = kept + [(epoch, start_offset)]
        self._persist()

    def end_offset_for(self, requested: int, log_end_offset: int) -> tuple[int, int]:
        """Kafka's LeaderEpochFileCache.endOffsetFor: (epoch, end offset) answering
        OffsetsForLeaderEpoch. The end offset of an epoch is the start of the next one."""
        if requested == UNDEFINED_EPOCH or not self.entries:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        if requested == self.latest_epoch:
            return requested, log_end_offset
        higher = next(((e, o) for e, o in self.entries if e > requested), None)
        if higher is None:
            return UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET
        floor = [(e, o) for e, o in self.entries if e <= requested]
        return (floor[-1][0] if floor else requested), higher[1]

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs that start at or after `end_offset` (the log was truncated there)."""
        kept = [(e, o) for e, o in self.entries if o < end_offset]
        if kept != self.entries:
            self.entries = kept
            self._persist()

    def truncate_from_start(self, start_offset: int) -> None:
        """The log now starts at `start_offset`: the epoch covering it starts there."""
        before = [i for i, (_, o) in enumerate(self.entries) if o <= start_offset]
        if not before:
            return
        last = before[-1]
        kept = [(self.entries[last][0], start_offset)] + self.entries[last + 1 :]
        if kept != self.entries:
            self.entries = kept
            self._persist()

    def _persist(self) -> None:
        write_checkpoint(self._disk, self._path, list(self.entries))
