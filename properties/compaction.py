"""Kafka's documented guarantees of log compaction (the "Log Compaction" section of
Kafka's design documentation), checked against what was written:

- `compaction-head-lost`: a consumer that keeps up sees every record - nothing at or
  above the cleaner's reach (the last offset any pass was allowed to clean) is removed;
- `compaction-latest-lost`: after cleaning, the latest value of every key remains (a
  tombstone may go, once it is older than delete.retention.ms);
- `compaction-offset-changed`: offsets never change and order is kept - every record
  still in the log is the one written at its offset, in offset order;
- `compaction-tombstone-early`: a tombstone (null value) that is its key's latest record
  stays visible for delete.retention.ms.

`written`: every record appended, (offset, key, value, timestamp ms); `log`: the log's
records now, (offset, key, value) in log order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Written = tuple[int, bytes | None, bytes | None, int]
Stored = tuple[int, bytes | None, bytes | None]


@dataclass(frozen=True)
class CompactionViolation:
    name: str
    offset: int
    detail: str

    def __str__(self) -> str:
        return f"{self.name} at offset {self.offset}: {self.detail}"


def check_compaction(written: Sequence[Written], log: Sequence[Stored], now_ms: int, delete_retention_ms: int,
                     cleaned_below: int) -> list[CompactionViolation]:
    by_offset = {o: (k, v) for o, k, v, _ in written}
    present = {o for o, _, _ in log}
    out: list[CompactionViolation] = []
    offsets = [o for o, _, _ in log]
    for i, (o, k, v) in enumerate(log):
        if by_offset.get(o) != (k, v):
            out.append(CompactionViolation("compaction-offset-changed", o, f"holds {(k, v)}, {by_offset.get(o)} was"
                                                                           " written there"))
        if i and offsets[i - 1] >= o:
            out.append(CompactionViolation("compaction-offset-changed", o, f"follows offset {offsets[i - 1]}"))
    latest: dict[bytes | None, Written] = {}
    for w in written:
        latest[w[1]] = w
    for o, k, v, _ in written:
        if o >= cleaned_below and o not in present:
            out.append(CompactionViolation("compaction-head-lost", o, f"{(k, v)} was never within the cleaner's"
                                                                      f" reach (below {cleaned_below})"))
    for k, (o, _, v, ts) in sorted(latest.items(), key=lambda kv: kv[1][0]):
        if o in present or o >= cleaned_below:
            continue  # (a head record missing is reported above)
        if v is not None:
            out.append(CompactionViolation("compaction-latest-lost", o, f"key {k!r}'s latest value {v!r} is gone"))
        elif now_ms - ts < delete_retention_ms:
            out.append(CompactionViolation("compaction-tombstone-early", o, f"key {k!r}'s tombstone written at {ts}"
                                                                            f" gone at {now_ms}, before"
                                                                            f" delete.retention.ms={delete_retention_ms}"))
    return out
