"""A small model of one partition consumed by a consumer group: positions, commits,
rebalances, crashes and zombies, per commit strategy. Explorable exhaustively.

The partition holds `records` records. The coordinator keeps the committed offset (the
next record to read) and the generation; a rebalance gives the partition to any live
member (a session timeout, a poll timeout or a false suspicion: the previous owner may
still be alive, a zombie, until it learns), which resumes from the committed offset.
A commit carries the member's generation and is refused from an older one.

    member = (alive, generation, position, batch, stage)
        position  the next offset it will fetch
        batch     offsets fetched and not yet processed (one record per poll here)
        stage     "poll" (may fetch), "process" (must process), "commit" (must commit)

Strategies (the seed notes' three, as the implementation's applications run them):
    after       poll -> process -> commitSync(position)           at-least-once
    before      poll -> commitSync(position) -> process if it held  at-most-once
    auto-async  poll (auto commit of the position first) -> hand the batch to a worker
                that processes it whenever it likes                (loses records)

Ghost state: how often each record was processed. Invariants: NoDuplicates (no record
processed twice) and NoLoss (a record below the committed offset was processed, or a
live member still holds it and may process it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

STRATEGIES = ("after", "before", "auto-async")
NONE = -1


class Member(NamedTuple):
    alive: bool
    generation: int
    position: int
    batch: tuple[int, ...]
    stage: str


class GroupState(NamedTuple):
    committed: int
    generation: int
    owner: int
    members: tuple[Member, ...]
    processed: tuple[int, ...]  # ghost: times each record was processed (capped at 2)


@dataclass(frozen=True)
class GroupBounds:
    records: int = 3
    members: int = 2
    max_generation: int = 3


class GroupModel:
    def __init__(self, strategy: str = "after", bounds: GroupBounds | None = None) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown commit strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
        self.strategy = strategy
        self.bounds = bounds or GroupBounds()
        self.variant = f"group(commit {strategy})"

    def initial(self) -> GroupState:
        idle = Member(True, 0, 0, (), "poll")
        return GroupState(0, 0, NONE, (idle,) * self.bounds.members, (0,) * self.bounds.records)

    @staticmethod
    def _with(s: GroupState, m: int, member: Member) -> GroupState:
        return s._replace(members=s.members[:m] + (member,) + s.members[m + 1:])

    def actions(self, s: GroupState) -> Iterator[tuple[str, GroupState]]:
        for m, mb in enumerate(s.members):
            if not mb.alive:
                continue
            if s.generation < self.bounds.max_generation and m != s.owner:
                joined = Member(True, s.generation + 1, s.committed, (), "poll")
                yield f"Rebalance(member {m} owns it, generation {s.generation + 1}, from offset {s.committed})", \
                    self._with(s, m, joined)._replace(generation=s.generation + 1, owner=m)
            yield f"Crash(member {m})", self._with(s, m, mb._replace(alive=False))
            if mb.generation == 0:
                continue  # never owned the partition
            yield from self.step(s, m, mb)

    def step(self, s: GroupState, m: int, mb: Member):
        n = self.bounds.records
        if mb.stage == "poll" and mb.position < n:
            fetched = mb._replace(position=mb.position + 1, batch=mb.batch + (mb.position,))
            if self.strategy == "auto-async":
                # auto commit at poll of the position so far, then the batch goes to a worker
                yield f"Poll(member {m}, auto commit {mb.position}, gets {mb.position})", self._with(
                    self._commit(s, mb, mb.position), m, fetched)
            else:
                nxt = "process" if self.strategy == "after" else "commit"
                yield f"Poll(member {m}, gets {mb.position})", self._with(s, m, fetched._replace(stage=nxt))
        if mb.batch and (mb.stage == "process" or self.strategy == "auto-async"):
            done = self._processed(s, mb.batch)
            nxt = "commit" if self.strategy == "after" else "poll"
            yield f"Process(member {m}, {list(mb.batch)})", self._with(done, m, mb._replace(batch=(), stage=nxt))
        if mb.stage == "commit":
            accepted = self.accepts(s, mb)
            after = self._commit(s, mb, mb.position)
            if self.strategy == "after":
                yield f"Commit(member {m}, {mb.position}{'' if accepted else ', refused'})", self._with(
                    after, m, mb._replace(stage="poll"))
            elif accepted:
                yield f"Commit(member {m}, {mb.position})", self._with(after, m, mb._replace(stage="process"))
            else:
                # commit refused: at-most-once does not process (the next owner will)
                yield f"Commit(member {m}, {mb.position}, refused)", self._with(s, m, mb._replace(batch=(),
                                                                                                 stage="poll"))

    @staticmethod
    def accepts(s: GroupState, mb: Member) -> bool:
        """The coordinator takes a commit only from the current generation (ILLEGAL_GENERATION)."""
        return mb.generation == s.generation

    def _commit(self, s: GroupState, mb: Member, offset: int) -> GroupState:
        return s._replace(committed=offset) if self.accepts(s, mb) else s

    @staticmethod
    def _processed(s: GroupState, batch: tuple[int, ...]) -> GroupState:
        counts = list(s.processed)
        for r in batch:
            counts[r] = min(2, counts[r] + 1)
        return s._replace(processed=tuple(counts))

    def invariants(self, s: GroupState) -> list[tuple[str, str]]:
        bad = []
        twice = [r for r, n in enumerate(s.processed) if n > 1]
        if twice:
            bad.append(("NoDuplicates", f"record(s) {twice} processed twice"))
        held = {r for mb in s.members if mb.alive for r in mb.batch}
        lost = [r for r in range(s.committed) if s.processed[r] == 0 and r not in held]
        if lost:
            bad.append(("NoLoss", f"record(s) {lost} are below the committed offset {s.committed}"
                                  " and nobody processed or holds them"))
        return bad

    @staticmethod
    def describe(s: GroupState) -> str:
        members = "; ".join(
            f"m{i} {'up' if mb.alive else 'down'} gen {mb.generation} pos {mb.position} batch {list(mb.batch)}"
            f" {mb.stage}" for i, mb in enumerate(s.members))
        return (f"committed {s.committed}, generation {s.generation}, owner {s.owner}; {members};"
                f" processed {list(s.processed)}")
