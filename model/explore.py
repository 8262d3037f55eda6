"""Exhaustive bounded exploration of the replication model.

Breadth-first over every reachable state (states are tuples, hash-consed in one
dict), invariants checked in each new state; the first violation comes with the
shortest trace that reaches it, since BFS visits states in order of depth. With
symmetry reduction (a model's `canonical`), states that differ only by renaming replicas
count once.

With an executor (a local process pool, a Dask cluster's) the frontier is sharded: each
level is cut into chunks, workers expand them, and the answers are merged in the order
the search in one process visits them, so every figure, verdict and trace is the same
whatever runs it (tests/test_model.py).
"""

from __future__ import annotations

import gc
import os
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
    model.invariants = _Only(judge, frozenset(names))
    return model


class _Only:
    """`restrict`'s judge (a class, not a lambda: a sharded search sends the model to workers)."""

    def __init__(self, judge, names: frozenset[str]) -> None:
        self.judge, self.names = judge, names

    def __call__(self, s) -> list[tuple[str, str]]:
        return [bad for bad in self.judge(s) if bad[0] in self.names]


CHUNK = 2048  # frontier states per task when sharded (a task takes about a tenth of a second)


def explore(model: Model, symmetry: bool = False, max_states: int | None = None, executor=None) -> Result:
    # The states are acyclic tuples, millions of them alive: the cyclic collector finds
    # nothing in them and its full passes cost a fifth of the search.
    collecting = gc.isenabled()
    gc.disable()
    try:
        if executor is None:
            return _explore(model, symmetry, max_states)
        return _sharded(model, symmetry, max_states, executor)
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

    bad = model.invariants(init)
    if bad:
        return _failed(result, parent, init_key, *bad[0])
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
                return _failed(result, parent, k, *bad[0])
            queue.append((k, nxt, depth + 1))
            if max_states is not None and len(parent) >= max_states:
                result.complete = False
                queue.clear()
                break
    result.transitions = transitions
    result.distinct = len(parent)
    result.seconds = time.perf_counter() - start
    return result


# What this worker process has met in one sharded search (the latest): each key and each
# concrete state with the first place, (level, chunk), it met it. A chunk need not send a
# key met at an earlier place: the coordinator merges that place first.
_MET: dict = {"search": None, "keys": {}, "renamed": {}}


def _expand(model: Model, symmetry: bool, frontier: list[State], search: str, place: tuple[int, int]):
    """A worker's share of a level: the successors of `frontier` in the order one process
    visits them, each key once and none this worker met at an earlier place, as (index in
    frontier, action, state, key, transitions counted up to it, broken invariants); and
    the chunk's transitions."""
    if _MET["search"] != search:
        _MET.update(search=search, keys={}, renamed={})
    keys, renamed = _MET["keys"], _MET["renamed"]
    collecting = gc.isenabled()
    gc.disable()
    try:
        canon = model.canonical if symmetry else None
        found = []
        transitions = 0
        for i, s in enumerate(frontier):
            for action, nxt in model.actions(s):
                transitions += 1
                if canon is None:
                    k = nxt
                else:
                    met = renamed.get(nxt)
                    if met is not None and met <= place:
                        continue
                    renamed[nxt] = place
                    k = canon(nxt)
                met = keys.get(k)
                if met is not None and met <= place:
                    continue
                keys[k] = place
                found.append((i, action, nxt, k, transitions, model.invariants(nxt)))
        return found, transitions
    finally:
        if collecting:
            gc.enable()


def _sharded(model: Model, symmetry: bool, max_states: int | None, executor) -> Result:
    """Level by level: chunks of the frontier expanded on `executor`, merged in frontier
    order - the first chunk to reach a state is its parent, as in one process."""
    start = time.perf_counter()
    init = model.initial()
    init_key = model.canonical(init) if symmetry else init
    parent: dict[State, tuple[State | None, str, State]] = {init_key: (None, "Init", init)}
    result = Result(model.variant)

    def finish(transitions: int) -> Result:
        result.transitions, result.distinct = transitions, len(parent)
        result.seconds = time.perf_counter() - start
        return result

    bad = model.invariants(init)
    if bad:
        return _failed(result, parent, init_key, *bad[0])
    level: list[tuple[State, State]] = [(init_key, init)]
    search = os.urandom(8).hex()  # (names this search in the workers' memory; no answer depends on it)
    transitions = 0
    depth = 0
    while level:
        result.depth = depth
        chunks = [level[i:i + CHUNK] for i in range(0, len(level), CHUNK)]
        futures = [executor.submit(_expand, model, symmetry, [s for _, s in chunk], search, (depth, c))
                   for c, chunk in enumerate(chunks)]
        following = []
        try:
            for chunk, future in zip(chunks, futures, strict=True):
                found, counted = future.result()
                for i, action, nxt, k, upto, bad in found:
                    if k in parent:
                        continue
                    parent[k] = (chunk[i][0], action, nxt)
                    if bad:
                        result.depth = depth + 1
                        finish(transitions + upto)
                        return _failed(result, parent, k, *bad[0])
                    following.append((k, nxt))
                    if max_states is not None and len(parent) >= max_states:
                        result.complete = False
                        return finish(transitions + upto)
                transitions += counted
        finally:
            for future in futures:
                future.cancel()
        level = following
        depth += 1
    return finish(transitions)


def _failed(result: Result, parent: dict, key: State, name: str, detail: str) -> Result:
    """`result` with the violation and the trace from the initial state to `key`."""
    trace = []
    k: State | None = key
    while k is not None:
        prev, action, concrete = parent[k]
        trace.append((action, concrete))
        k = prev
    result.invariant, result.detail, result.trace = name, detail, trace[::-1]
    return result
