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


def _run_plain(args: tuple[Setup, int, bool, bool]):
    from kafkaproof.impl.engine.run import run_one

    setup, seed, keep_history, stats = args
    return run_one(setup, seed, keep_history, stats=stats)


def run_many(work: list[tuple[Setup, int]], progress=None, executor=None, keep_history: bool = False,
             stats: bool = False) -> list:
    """Each (setup, seed) in this process, or on `executor` (a `LocalPool`, Dask's
    `Client.get_executor()`, any concurrent.futures executor). `progress()` is called as
    each run finishes, on whichever worker. Same results, same order, whatever runs them.
    `stats`: each result's RunResult.stats (a report's plots)."""
    return list(iter_runs(work, progress, executor, keep_history, stats))


def iter_runs(work: list[tuple[Setup, int]], progress=None, executor=None, keep_history: bool = False,
              stats: bool = False):
    """run_many's results one at a time, in order, as soon as each and those before it
    are in: a caller that stops at the first violation (a campaign's must-hold) stops
    the runs still pending."""
    tasks = [(setup, s, keep_history, stats) for setup, s in work]
    if executor is None:
        for task in tasks:
            result = _run_plain(task)
            if progress is not None:
                progress()
            yield result
        return
    results: dict[int, object] = {}
    given = 0  # results yielded so far (all those before index `given`)
    futures: dict = {}
    try:
        for attempt in range(REPLACEMENTS + 1):
            futures = {executor.submit(_run_plain, tasks[i]): i for i in range(given, len(tasks)) if i not in results}
            try:
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    if progress is not None:
                        progress()
                    while given in results:
                        yield results[given]
                        given += 1
                break
            except BrokenProcessPool:
                # A local worker died (killed, out of memory): what finished is kept, the
                # rest is run again on a fresh pool.
                for future, i in futures.items():
                    if future.done() and future.exception() is None and i not in results:
                        results[i] = future.result()
                        if progress is not None:
                            progress()
                if attempt == REPLACEMENTS or not hasattr(executor, "replace"):
                    raise
                executor.replace()
        while given in results:
            yield results[given]
            given += 1
    finally:  # (the caller stopped early, or a run failed: what is pending is not wanted)
        for future in futures:
            future.cancel()


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
