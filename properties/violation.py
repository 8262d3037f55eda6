"""A checker's verdict: the anomaly's name, the operations that witness it, and why."""

from __future__ import annotations

from dataclasses import dataclass

from kafkaproof.properties.history import Op


@dataclass(frozen=True)
class Violation:
    name: str
    ops: tuple[Op, ...]
    detail: str

    def __str__(self) -> str:
        return f"{self.name}: {self.detail} (ops {', '.join(str(op.index) for op in self.ops)})"
