"""Where runs run: this process, a pool of local processes, or any executor - a Dask
cluster's, as the commands open it (kafkaproof/executors.py).

A run is a pure function of (setup, seed), so `run_many` may hand runs to any
concurrent.futures-style executor (`submit`) and merges them back in the order they were
asked: totals, first violating seeds and counterexamples never depend on the executor or
its number of workers. A worker lost mid-campaign costs no result: Dask's scheduler runs
its tasks again elsewhere, and a broken local pool is replaced and the runs it had not
returned are run again.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from kafkaproof.impl.engine.setup import Setup

REPLACEMENTS = 3  # broken local pools replaced before a campaign gives up


def _run_plain(args: tuple[Setup, int, bool]):
    from kafkaproof.impl.engine.run import run_one

    return run_one(*args)


def run_many(work: list[tuple[Setup, int]], progress=None, executor=None, keep_history: bool = False) -> list:
    """Each (setup, seed) in this process, or on `executor` (a `LocalPool`, Dask's
    `Client.get_executor()`, any concurrent.futures executor). `progress()` is called as
    each run finishes, on whichever worker. Same results, same order, whatever runs them."""
    tasks = [(setup, s, keep_history) for setup, s in work]
    if executor is None:
        out = []
        for task in tasks:
            out.append(_run_plain(task))
            if progress is not None:
                progress()
        return out
    results: dict[int, object] = {}
    for attempt in range(REPLACEMENTS + 1):
        todo = [i for i in range(len(tasks)) if i not in results]
        futures = {executor.submit(_run_plain, tasks[i]): i for i in todo}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                if progress is not None:
                    progress()
            break
        except BrokenProcessPool:
            # A local worker died (killed, out of memory): what finished is kept, the rest
            # is run again on a fresh pool.
            for future, i in futures.items():
                if future.done() and future.exception() is None:
                    if i not in results and progress is not None:
                        progress()
                    results[i] = future.result()
            if attempt == REPLACEMENTS or not hasattr(executor, "replace"):
                raise
            executor.replace()
    return [results[i] for i in range(len(tasks))]


def run_check(setup: Setup, runs: int, seed: int, progress=None, executor=None,
              keep_history: bool = False) -> list:
    """Runs seed, seed+1, ... of one setup (see run_many)."""
    return run_many([(setup, seed + i) for i in range(runs)], progress, executor, keep_history)


class LocalPool:
    """A pool of `jobs` local processes that replaces itself when a worker dies."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.pool = ProcessPoolExecutor(max_workers=jobs)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    def replace(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = ProcessPoolExecutor(max_workers=self.jobs)

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
