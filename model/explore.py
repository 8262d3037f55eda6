"""Exhaustive bounded exploration of the replication model.

Breadth-first over every reachable state (states are tuples, hash-consed in one
dict), invariants checked in each new state; the first violation comes with the
shortest trace that reaches it, since BFS visits states in order of depth. With
symmetry reduction (a model's `canonical`), states that differ only by renaming replicas
count once.
"""

from __future__ import annotations

import gc
import time
from collections import deque
from dataclasses import dataclass, field

from kafkaproof.model.replication import Model, State


@dataclass
class Result:
    variant: str
    transitions: int = 0
    distinct: int = 0
    depth: int = 0
    seconds: float = 0.0
    invariant: str | None = None
    detail: str = ""
    trace: list[tuple[str, State]] = field(default_factory=list)  # (action, state after it)
    complete: bool = True  # False when max_states cut the search

    @property
    def holds(self) -> bool:
        return self.invariant is None


def restrict(model, names) -> object:
    """The model judged by only the invariants in `names` (so a search can look past a
    shorter violation of another one). Returns the same model."""
    judge = model.invariants
    model.invariants = lambda s: [bad for bad in judge(s) if bad[0] in names]
    return model


def explore(model: Model, symmetry: bool = False, max_states: int | None = None) -> Result:
    # The states are acyclic tuples, millions of them alive: the cyclic collector finds
    # nothing in them and its full passes cost a fifth of the search.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _explore(model, symmetry, max_states)
    finally:
        if collecting:
            gc.enable()


def _explore(model: Model, symmetry: bool, max_states: int | None) -> Result:
    start = time.perf_counter()
    canon = model.canonical if symmetry else None
    # Two thirds of the transitions reach a concrete state reached before: looking it up is
    # cheaper than renaming it again.
    renamed: set[State] = set()

    init = model.initial()
    init_key = canon(init) if canon else init
    parent: dict[State, tuple[State | None, str, State]] = {init_key: (None, "Init", init)}
    queue = deque([(init_key, init, 0)])
    result = Result(model.variant)

    def fail(key: State, name: str, detail: str) -> Result:
        trace = []
        k: State | None = key
        while k is not None:
            prev, action, concrete = parent[k]
            trace.append((action, concrete))
            k = prev
        result.invariant, result.detail, result.trace = name, detail, trace[::-1]
        return result

    bad = model.invariants(init)
    if bad:
        return fail(init_key, *bad[0])
    transitions = 0  # (a local: counted 1.3 million times on the big bounds)
    while queue:
        key, s, depth = queue.popleft()
        result.depth = max(result.depth, depth)
        for action, nxt in model.actions(s):
            transitions += 1
            if canon is None:
                k = nxt
            elif nxt in renamed:
                continue
            else:
                renamed.add(nxt)
                k = canon(nxt)
            if k in parent:
                continue
            parent[k] = (key, action, nxt)
            bad = model.invariants(nxt)
            if bad:
                result.transitions = transitions
                result.distinct = len(parent)
                result.depth = depth + 1
                result.seconds = time.perf_counter() - start
                return fail(k, *bad[0])
            queue.append((k, nxt, depth + 1))
            if max_states is not None and len(parent) >= max_states:
                result.complete = False
                queue.clear()
                break
    result.transitions = transitions
    result.distinct = len(parent)
    result.seconds = time.perf_counter() - start
    return result
