"""The executor a command runs on (`--jobs N`, `--scheduler tcp://HOST:8786`), checked
before any run: the engine (impl/engine/executors.py) runs on whatever it is given.
"""

from __future__ import annotations

import contextlib
import hashlib
import pathlib

from kafkaproof.impl.engine.executors import LocalPool

CONNECT_TIMEOUT_S = 10


class ExecutorError(Exception):
    """The executor cannot run this campaign (said before any run starts)."""


def fingerprint() -> str:
    """kafkaproof's version and a digest of its sources: workers running other code would
    give other answers, so a campaign refuses them."""
    import kafkaproof
    from kafkaproof import impl, model, properties

    digest = hashlib.sha256()
    inner = {"impl", "model", "properties"}  # (inside kafkaproof/ when installed, beside it when editable)
    for package in (kafkaproof, impl, model, properties):
        root = pathlib.Path(package.__file__).parent
        for path in sorted(root.rglob("*.py")):
            relative = path.relative_to(root)
            if package is kafkaproof and relative.parts[0] in inner:
                continue
            digest.update(f"{package.__name__}/{relative}".encode() + b"\0" + path.read_bytes())
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
