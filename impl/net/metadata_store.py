"""The controller's metadata store kept in one file: the real runtime's stand-in for the
KRaft metadata log (the simulator keeps it in memory, impl/controller/store.py)."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable

from kafkaproof.impl.controller.store import ClusterMetadata, SimMetadataStore
from kafkaproof.impl.protocol.messages import PartitionState


class FileMetadataStore(SimMetadataStore):
    """The same store kept in one file (the real runtime's stand-in for the KRaft
    metadata log): every commit and every new controller epoch is written
    atomically, so a restarted cluster finds its topics, leaders and ISRs."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        if os.path.exists(path):
            try:
                with open(path, "rb") as f:
                    data, self.controller_epoch = pickle.load(f)
                # A file from before a field was added: rebuilt, so the field gets its default.
                self.data = ClusterMetadata(**vars(data))
                self.data.partitions = {tp: PartitionState(**vars(st)) for tp, st in self.data.partitions.items()}
            except (OSError, pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
                raise ValueError(f"{path}: unreadable cluster metadata ({e}); move it away to start empty") from None

    def acquire(self, node_id: int, now: int, lease_ms: int) -> int | None:
        before = self.controller_epoch
        epoch = super().acquire(node_id, now, lease_ms)
        if self.controller_epoch != before:
            self._save()
        return epoch

    def commit(self, controller_epoch: int, change: Callable[[ClusterMetadata], None]) -> bool:
        done = super().commit(controller_epoch, change)
        if done:
            self._save()
        return done

    def _save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            pickle.dump((self.data, self.controller_epoch), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
