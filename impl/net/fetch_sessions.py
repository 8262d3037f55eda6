"""Incremental fetch sessions (KIP-227), a wire matter: the broker's own fetches name one
partition each, so the gateway keeps the sessions.

A consumer opens a session with a full fetch (session id 0, epoch 0); the broker answers
with a session id. Its next fetches (epoch 1, 2, ...) name only the partitions whose
fetch position changed, and `forgotten_topics_data` names those it drops; the broker
fetches every partition of the session and answers only those with something new
(records, an error, a moved high watermark, last stable offset or log start). An
unknown or evicted session is FETCH_SESSION_ID_NOT_FOUND, an epoch out of step
INVALID_FETCH_SESSION_EPOCH: the client then starts over with a full fetch. Kafka's
FetchSessionCache evicts by size and age; here the least recently used session goes when
max.incremental.fetch.session.cache.slots are taken.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from kafkaproof.impl.protocol.errors import ErrorCode

INITIAL_EPOCH, FINAL_EPOCH = 0, -1
INT32_MAX = 2**31 - 1

Key = tuple[str, int]  # (topic, partition)


@dataclass
class Cached:
    """One partition of a session: what the client asked last, what it was told last."""

    fetch: object  # the request's partition entry (fetch_offset, partition_max_bytes, ...)
    told: tuple | None = None  # (high watermark, last stable offset, log start) last answered


@dataclass
class Session:
    id: int
    epoch: int  # the epoch the next request must carry
    partitions: OrderedDict[Key, Cached] = field(default_factory=OrderedDict)


class FetchSessions:
    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._sessions: OrderedDict[int, Session] = OrderedDict()  # least recently used first
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def begin(self, session_id: int, epoch: int, wanted: list[tuple[Key, object]],
              forgotten: list[Key]) -> tuple[ErrorCode, Session | None, list[tuple[Key, object]]]:
        """(error, the session or None for a sessionless fetch, the partitions to fetch)."""
        with self._lock:
            if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
                self._sessions.pop(session_id, None)  # a client closing its session, or starting over
                if epoch == FINAL_EPOCH or self.slots <= 0:
                    return ErrorCode.NONE, None, wanted
                while len(self._sessions) >= self.slots:
                    self._sessions.popitem(last=False)
                s = Session(next(self._ids), _next(INITIAL_EPOCH), OrderedDict((k, Cached(p)) for k, p in wanted))
                self._sessions[s.id] = s
                return ErrorCode.NONE, s, wanted
            s = self._sessions.get(session_id)
            if s is None:
                return ErrorCode.FETCH_SESSION_ID_NOT_FOUND, None, []
            if epoch != s.epoch:
                return ErrorCode.INVALID_FETCH_SESSION_EPOCH, None, []
            self._sessions.move_to_end(session_id)
            s.epoch = _next(epoch)
            for k in forgotten:
                s.partitions.pop(k, None)
            for k, p in wanted:
                if k in s.partitions:
                    s.partitions[k].fetch = p
                else:
                    s.partitions[k] = Cached(p)
            return ErrorCode.NONE, s, [(k, c.fetch) for k, c in s.partitions.items()]

    def news(self, s: Session | None, incremental: bool, key: Key, state: tuple, has_records: bool,
             error: ErrorCode) -> bool:
        """Whether a partition's answer goes into the response (always, when not
        incremental), remembering what the client was told."""
        with self._lock:
            cached = s.partitions.get(key) if s is not None else None
            changed = cached is None or cached.told != state
            if cached is not None:
                cached.told = state
        return not incremental or has_records or error != ErrorCode.NONE or changed


def _next(epoch: int) -> int:
    return 1 if epoch >= INT32_MAX else epoch + 1
