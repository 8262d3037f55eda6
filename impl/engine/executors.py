"""Where runs run: this process, a pool of local processes, or a Dask cluster.

A run is a pure function of (setup, seed), so `run_many` may hand runs to any
concurrent.futures-style executor (`submit`) and merges them back in the order they were
asked: totals, first violating seeds and counterexamples never depend on the executor or
its number of workers. A worker lost mid-campaign costs no result: Dask's scheduler runs
its tasks again elsewhere, and a broken local pool is replaced and the runs it had not
returned are run again.
"""

from __future__ import annotations

import contextlib
import hashlib
import pathlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from kafkaproof.impl.engine.setup import Setup

REPLACEMENTS = 3  # broken local pools replaced before a campaign gives up
CONNECT_TIMEOUT_S = 10


class ExecutorError(Exception):
    """The executor cannot run this campaign (said before any run starts)."""


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


def fingerprint() -> str:
    """kafkaproof's version and a digest of its sources: workers running other code would
    give other answers, so a campaign refuses them."""
    import kafkaproof
    from kafkaproof import impl, model, properties

    digest = hashlib.sha256()
    for package in (kafkaproof, impl, model, properties):
        root = pathlib.Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return f"{kafkaproof.__version__}+{digest.hexdigest()[:12]}"


@contextlib.contextmanager
def opened(scheduler: str | None = None, jobs: int = 1):
    """The executor a command runs on: a Dask cluster's (`scheduler`, tcp://HOST:8786),
    a pool of `jobs` local processes, or None (this process). Raises ExecutorError -
    before any run - when the scheduler is unreachable, has no workers, or its workers
    run another kafkaproof."""
    if scheduler:
        with _dask(scheduler) as executor:
            yield executor
    elif jobs > 1:
        with LocalPool(jobs) as pool:
            yield pool
    else:
        yield None


@contextlib.contextmanager
def _dask(address: str):
    try:
        from distributed import Client
    except ImportError as exc:
        raise ExecutorError("--scheduler needs Dask: pip install 'kafkaproof[cluster]'") from exc
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ExecutorError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except TimeoutError as exc:
            raise ExecutorError(f"the Dask scheduler at {address} has no workers") from exc
        ours = fingerprint()
        theirs = client.run(fingerprint)
        other = {worker: fp for worker, fp in theirs.items() if fp != ours}
        if other:
            raise ExecutorError(f"workers of {address} run another kafkaproof ("
                                + ", ".join(f"{w}: {fp}" for w, fp in sorted(other.items()))
                                + f"; this one is {ours}): their runs would not be this version's")
        yield client.get_executor(pure=False)
    finally:
        client.close()
