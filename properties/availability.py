"""Availability under one broker failure: `unavailable`.

unavailable: one broker has been down for longer than it takes the cluster to notice
    and route around it (`GRACE_MS`: broker.session.timeout.ms, 9 s, for the controller
    to fence it, plus the producer's retries and metadata refresh), nothing else is wrong
    (no partition, pause, lossy network), and still a send made after that grace got no
    acknowledgement within `PATIENCE_MS`. This is the seed's warning about
    replication.factor = min.insync.replicas: one failure and acks=all writes stop.

Only stretches of at least GRACE_MS + PATIENCE_MS with one broker down are judged, so
runs with short faults judge nothing; `check` judges it when a fixed schedule is given.
"""

from __future__ import annotations

from kafkaproof.properties.history import INVOKE, NEMESIS, OK, History
from kafkaproof.properties.violation import Violation

GRACE_MS = 15_000
PATIENCE_MS = 5_000
# Nemesis events that leave the network and processes healthy apart from broker deaths.
_CALM = ("crash", "power-loss", "restart", "shutdown", "heal")


def _stretches(history: History):
    """(start op, start time, end time) of the stretches with exactly one broker down and
    no other fault active."""
    down: set[str] = set()
    disturbed = False
    start = None
    for op in history.faults():
        node = (op.value or "").split(" ")[0]
        if op.f not in _CALM:
            disturbed = True
        elif op.f == "heal":
            disturbed = False
        elif node.startswith("broker-"):
            (down.discard if op.f == "restart" else down.add)(node)
        calm = len(down) == 1 and not disturbed
        # (a group member's crash leaves the brokers as they were: the stretch goes on)
        if start is not None and (not calm or (op.f in ("crash", "power-loss", "restart")
                                               and node.startswith("broker-"))):
            yield start[0], start[1], op.time
            start = None
        if calm and start is None:
            start = (op, op.time)
    if start is not None:
        end = max((op.time for op in history.ops), default=start[1])
        yield start[0], start[1], end


def judged_stretches(history: History) -> list[tuple]:
    """The stretches long enough to judge: (start op, start time, end time)."""
    return [s for s in _stretches(history) if s[2] - s[1] >= GRACE_MS + PATIENCE_MS]


def check_availability(history: History) -> list[Violation]:
    out = []
    for fault, begin, end in judged_stretches(history):
        invoked: dict[tuple[str, str | None], object] = {}
        acked: set[tuple[str, str | None]] = set()
        for op in history.ops:
            if op.f != "send" or op.process == NEMESIS or op.time > end:
                continue
            if op.type == INVOKE and begin + GRACE_MS <= op.time <= end - PATIENCE_MS:
                invoked[(op.process, op.value)] = op
            elif op.type == OK and op.time - getattr(invoked.get((op.process, op.value)), "time", op.time) <= PATIENCE_MS:
                acked.add((op.process, op.value))
        stuck = [op for key, op in invoked.items() if key not in acked]
        if stuck:
            first = stuck[0]
            out.append(Violation("unavailable", (fault, first),
                                 f"{fault.value} down since {begin} ms and nothing else wrong, yet {len(stuck)} of"
                                 f" {len(invoked)} sends made from {begin + GRACE_MS} ms on got no ack within"
                                 f" {PATIENCE_MS} ms (first: {first.value!r} at {first.time} ms)"))
    return out
