"""What a run looked like over time, from its history alone (Jepsen's operation model,
properties/jepsen_kafka.py; a simulator history through `from_history`): operations
per second, send latency, and Jepsen's real-time lag - for each poll, how long ago the
first record it could not yet see was acknowledged (0 when it has seen everything
acknowledged). Per bucket of BUCKET_S seconds: the plots of a report.
"""

from __future__ import annotations

import bisect
from collections import defaultdict

from kafkaproof.properties.jepsen_kafka import NS, polls, sends

BUCKET_S = 1.0
INVOKE, OK = "invoke", "ok"


def run_stats(ops: list[dict], bucket_s: float = BUCKET_S) -> dict:
    """{"bucket_s", "rows": [{"t": start s, "sends", "polls", "failed", "p50", "p99", "max" (send latency ms),
    "lag" (the largest real-time lag of the polls in it, ms)}]} - buckets with nothing in them left out."""
    pending: dict[object, float] = {}
    buckets: dict[int, dict] = defaultdict(lambda: {"sends": 0, "polls": 0, "failed": 0, "lat": [], "lag": 0.0})
    acked: dict[object, list[tuple[int, float]]] = defaultdict(list)  # key -> [(offset, ack time s)]
    # First pass: every acknowledged send's offset and time, for the lag.
    for op in ops:
        if op.get("type") == OK and op.get("f") in ("send", "txn"):
            for key, offset, _ in sends(op):
                if offset is not None:
                    acked[key].append((offset, op["time"] / NS / 1000))
    for key in acked:
        acked[key].sort()
    position: dict[tuple, int] = {}  # (process, key) -> the highest offset it has read
    for op in ops:
        kind, f, process = op.get("type"), op.get("f"), op.get("process")
        if f not in ("send", "poll", "txn") or process == "nemesis":
            continue
        t = op["time"] / NS / 1000
        if kind == INVOKE:
            pending[process] = t
            continue
        b = buckets[int(t // bucket_s)]
        began = pending.pop(process, None)
        if any(True for _ in sends(op)):
            if kind == OK:
                b["sends"] += 1
                if began is not None:
                    b["lat"].append((t - began) * 1000)
            else:
                b["failed"] += 1
        if kind == OK and any(m[0] == "poll" for m in op.get("value") or ()):
            b["polls"] += 1
            for key, offset, _ in polls(op):
                position[(process, key)] = max(offset, position.get((process, key), -1))
            for (who, key), at in position.items():
                if who == process:
                    b["lag"] = max(b["lag"], _lag(acked.get(key, ()), at, t) * 1000)
    rows = []
    for n in sorted(buckets):
        b = buckets[n]
        lat = sorted(b["lat"])
        rows.append({"t": round(n * bucket_s, 3), "sends": b["sends"] / bucket_s, "polls": b["polls"] / bucket_s,
                     "failed": b["failed"], "p50": _quantile(lat, 0.5), "p99": _quantile(lat, 0.99),
                     "max": round(lat[-1], 1) if lat else None, "lag": round(b["lag"], 1)})
    return {"bucket_s": bucket_s, "rows": rows}


def _lag(acked: list[tuple[int, float]], read_to: int, now: float) -> float:
    """How long ago the first record past `read_to` was acknowledged (0: none yet)."""
    i = bisect.bisect_right(acked, (read_to, float("inf")))
    if i < len(acked) and acked[i][1] <= now:
        return now - acked[i][1]
    return 0.0


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)
