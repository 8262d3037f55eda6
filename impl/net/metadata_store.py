"""The controller's metadata store kept in one file: the real runtime's stand-in for the
KRaft metadata log (the simulator keeps it in memory, impl/controller/store.py)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

from kafkaproof.impl.controller.store import ClusterMetadata, SimMetadataStore
from kafkaproof.impl.net.peer_codec import FrameError, Registry, message_types


@cache
def _codec() -> Registry:
    return Registry(message_types() + [ClusterMetadata])


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
                    raw = f.read()
                if raw[:1] == b"\x80":
                    raise FrameError("a pickle, written by an earlier kafkaproof - not loaded: a pickle can run code")
                self.data, self.controller_epoch = _codec().decode(raw)
                if not isinstance(self.data, ClusterMetadata) or not isinstance(self.controller_epoch, int):
                    raise FrameError("not (ClusterMetadata, controller epoch)")
            except (OSError, FrameError, ValueError) as e:
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
            f.write(_codec().encode((self.data, self.controller_epoch)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
