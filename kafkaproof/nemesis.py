"""Faults in real processes, for the wire workload (`kafkaproof test`) and the suite:

- `ProcessCluster`: a controller and N brokers, each its own `kafkaproof serve` process
  (`--controller-only` / `--broker-id N --controller HOST:PORT`), that a nemesis can
  kill -9, SIGSTOP and SIGCONT, and restart on the same port and data.
- `CommandNemesis`: a cluster kafkaproof did not start, faulted through the user's own
  commands, one template per fault (`kill='docker kill {node}'`).

Every fault is recorded as Jepsen records its nemesis: an operation of process
"nemesis", type info, f the fault, value the node.
"""

from __future__ import annotations

import random
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

# A fault and the one that ends it: the nemesis heals every fault before the final read.
HEALS = {"kill": "start", "pause": "resume"}
ALL = frozenset(HEALS) | frozenset(HEALS.values())


class NemesisError(RuntimeError):
    """A fault could not be injected or a process would not start: the message says which."""


class ServeProcess:
    """One `kafkaproof serve` process; its port read from the line it prints when ready."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args, self.log = args, open(log_path, "a")
        self.p = subprocess.Popen([sys.executable, "-m", "kafkaproof", "serve", *args, "--log-level", "INFO"],
                                  stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()  # "kafkaproof serve: ... at HOST:PORT"
        if "at 127.0.0.1:" not in line:
            self.p.kill()
            raise NemesisError(f"kafkaproof serve {' '.join(args)} did not start (see {log_path}): {line!r}")
        self.port = int(line.rsplit(":", 1)[1])

    def signal(self, sig: int) -> None:
        self.p.send_signal(sig)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGCONT)
            self.p.terminate()
            try:
                self.p.wait(20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(10)
        self.log.close()


class ProcessCluster:
    """A controller and `brokers` brokers as processes on localhost, data under `root`.
    `settings`: broker keys (KEY=VALUE) for every process."""

    def __init__(self, root: Path, settings: list[str], brokers: int = 3) -> None:
        self.root, self.settings = Path(root), list(settings)
        self.root.mkdir(parents=True, exist_ok=True)
        sets = [x for s in self.settings for x in ("--set", s)]
        self.controller = ServeProcess(["--controller-only", "--port", "0", "--data-dir",
                                        str(self.root / "controller"), *sets], self.root / "controller.log")
        self.brokers: dict[int, ServeProcess] = {}
        self.ports: dict[int, int] = {}
        for b in range(brokers):
            self.start(b)
        self.paused: set[int] = set()

    def start(self, b: int) -> None:
        """Start broker `b` (again: on its port and data, as a restarted Kafka broker)."""
        sets = [x for s in self.settings for x in ("--set", s)]
        self.brokers[b] = ServeProcess(["--broker-id", str(b), "--controller", f"127.0.0.1:{self.controller.port}",
                                        "--port", str(self.ports.get(b, 0)), "--data-dir", str(self.root / "data"),
                                        *sets], self.root / f"broker-{b}.log")
        self.ports[b] = self.brokers[b].port

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.ports.values())

    def kill(self, b: int) -> None:
        self.brokers[b].signal(signal.SIGKILL)
        self.brokers[b].p.wait(10)
        self.brokers[b].log.close()

    def pause(self, b: int) -> None:
        self.brokers[b].signal(signal.SIGSTOP)
        self.paused.add(b)

    def resume(self, b: int) -> None:
        self.brokers[b].signal(signal.SIGCONT)
        self.paused.discard(b)

    def alive(self, b: int) -> bool:
        return self.brokers[b].p.poll() is None

    def stop(self) -> None:
        for p in [*self.brokers.values(), self.controller]:
            p.stop()


class Nemesis:
    """Injects faults: on a schedule drawn from a seeded random (every `interval` seconds
    it either starts a fault on a node or heals the one running), or by `script`, a list
    of (seconds from start, fault or heal, node). `record(f, node)` is told of each as
    it happens; whatever is still running when it stops is healed."""

    def __init__(self, kinds: list[str], nodes: list, act: Callable[[str, object], None], interval: float = 5.0,
                 seed: int = 0, script: list[tuple[float, str, object]] | None = None) -> None:
        unknown = [k for k in kinds if k not in HEALS] + [f for _, f, _ in script or () if f not in ALL]
        if unknown:
            raise NemesisError(f"unknown fault {', '.join(map(str, unknown))}; faults: {', '.join(HEALS)}")
        self.kinds, self.nodes, self.act, self.interval = list(kinds), list(nodes), act, interval
        self.script = sorted(script or (), key=lambda step: step[0])
        self.rng = random.Random(seed)
        self.running: list[tuple[str, object]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.record: Callable[[str, object], None] = lambda f, node: None

    def apply(self, f: str, node) -> None:
        self.act(f, node)
        self.record(f, node)
        if f in HEALS:
            self.running.append((f, node))
        else:
            self.running = [(g, n) for g, n in self.running if not (HEALS[g] == f and n == node)]

    def step(self) -> None:
        """The random schedule's next move: heal what runs, else start a fault."""
        if self.running:
            f, node = self.running[-1]
            self.apply(HEALS[f], node)
        elif self.kinds:
            self.apply(self.rng.choice(self.kinds), self.rng.choice(self.nodes))

    def start(self) -> None:
        started = time.monotonic()

        def loop() -> None:
            if self.script:
                for at, f, node in self.script:
                    if self._stop.wait(max(0.0, started + at - time.monotonic())):
                        return
                    self.apply(f, node)
                return
            while not self._stop.wait(self.interval):
                self.step()
        self._thread = threading.Thread(target=loop, name="nemesis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop injecting and heal whatever is running."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        while self.running:
            f, node = self.running[-1]
            self.apply(HEALS[f], node)


def process_actions(cluster: ProcessCluster) -> Callable[[str, object], None]:
    """What each fault does to a ProcessCluster's broker."""
    def act(f: str, b) -> None:
        {"kill": cluster.kill, "start": cluster.start, "pause": cluster.pause, "resume": cluster.resume}[f](b)
    return act


def command_actions(templates: dict[str, str]) -> Callable[[str, object], None]:
    """Each fault (and its heal) runs the user's command with {node} filled in; a command
    that fails stops the test with its output."""
    def act(f: str, node) -> None:
        template = templates.get(f)
        if template is None:
            return
        command = template.format(node=shlex.quote(str(node)))
        done = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise NemesisError(f"--nemesis {f}={template!r} failed on {node} (exit {done.returncode}):"
                               f" {(done.stderr or done.stdout).strip()[:200]}")
    return act
