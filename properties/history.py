"""The history format: every client operation as invoke then ok / fail / info, and
every fault, with process, simulated time and what was read or written.

Names follow Jepsen's Kafka workload (`send`, `poll`) so results compare. `info`
means indefinite: the operation may or may not have taken effect.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
NEMESIS = "nemesis"
CONTROLLER = "controller"  # leader / epoch / ISR changes, recorded for timelines


@dataclass(frozen=True)
class Op:
    index: int
    time: int
    process: str
    type: str  # invoke | ok | fail | info
    f: str  # send | poll | crash | restart | power-loss | partition | heal | pause | resume | clock-jump ...
    topic: str | None = None
    partition: int | None = None
    key: str | None = None
    value: str | None = None
    offset: int | None = None
    records: tuple[tuple[str, int, int, str | None, str | None], ...] = ()  # poll: (topic, partition, offset, key, value)
    error: str | None = None


@dataclass
class History:
    ops: list[Op] = field(default_factory=list)

    def add(self, time: int, process: str, type: str, f: str, **fields) -> Op:
        op = Op(len(self.ops), time, process, type, f, **fields)
        self.ops.append(op)
        return op

    def to_jsonl(self) -> str:
        return "".join(json.dumps(asdict(op), separators=(",", ":")) + "\n" for op in self.ops)

    @classmethod
    def from_jsonl(cls, text: str) -> History:
        ops = []
        for line in text.splitlines():
            if line.strip():
                d = json.loads(line)
                d["records"] = tuple(tuple(r) for r in d.get("records", ()))
                ops.append(Op(**d))
        return cls(ops)

    def faults(self) -> list[Op]:
        return [op for op in self.ops if op.process == NEMESIS]

    def completions(self, f: str, type: str | None = None) -> list[Op]:
        return [op for op in self.ops if op.f == f and op.type != INVOKE and (type is None or op.type == type)]
