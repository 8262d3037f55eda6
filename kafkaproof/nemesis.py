"""Faults in real processes, for the wire workload (`kafkaproof test`) and the suite:

- `ProcessCluster`: a controller and N brokers, each its own `kafkaproof serve` process
  (`--controller-only` / `--broker-id N --controller HOST:PORT`), that a nemesis can
  kill -9, SIGSTOP and SIGCONT, and restart on the same port and data; with a `Network`
  (root), each in its own network namespace, so that a broker can be partitioned away.
- `CommandNemesis`: a cluster kafkaproof did not start, faulted through the user's own
  commands, one template per fault (`kill='docker kill {node}'`).

Every fault is recorded as Jepsen records its nemesis: an operation of process
"nemesis", type info, f the fault, value the node.
"""

from __future__ import annotations

import os
import random
import shlex
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

# A fault and the one that ends it: the nemesis heals every fault before the final read.
HEALS = {"kill": "start", "pause": "resume", "partition": "heal", "slow": "fast"}  # (slow/fast: Jepsen's net/slow!)
ALL = frozenset(HEALS) | frozenset(HEALS.values())


class NemesisError(RuntimeError):
    """A fault could not be injected or a process would not start: the message says which."""


class ServeProcess:
    """One `kafkaproof serve` process (inside a network namespace when `prefix` is `ip
    netns exec NAME`); its port read from the line it prints when ready."""

    def __init__(self, args: list[str], log_path: Path, host: str = "127.0.0.1", prefix: list[str] = ()) -> None:
        self.args, self.log = args, open(log_path, "a")
        self.p = subprocess.Popen([*prefix, sys.executable, "-m", "kafkaproof", "serve", *args, "--host", host,
                                   "--log-level", "INFO"], stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.p.stdout.readline()  # "kafkaproof serve: ... at HOST:PORT"
        if f"at {host}:" not in line:
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
    """A controller and `brokers` brokers as processes, data under `root`. On localhost;
    or with `network`, each in its own network namespace, so that links between them
    can be cut. `settings`: broker keys (KEY=VALUE) for every process. With `zookeeper`
    (zookeeper://HOST:PORT[/chroot]) the metadata lives there and every broker is a
    controller candidate: no controller process. `args`: more `serve` arguments for every
    broker (`--users FILE`)."""

    def __init__(self, root: Path, settings: list[str], brokers: int = 3, network: Network | None = None,
                 zookeeper: str | None = None, args: list[str] = ()) -> None:
        self.root, self.settings, self.network, self.zookeeper = Path(root), list(settings), network, zookeeper
        self.args = list(args)
        self.root.mkdir(parents=True, exist_ok=True)
        self.controller: ServeProcess | None = None
        self.brokers: dict[int, ServeProcess] = {}
        self.ports: dict[int, int] = {}
        self.paused: set[int] = set()
        sets = [x for s in self.settings for x in ("--set", s)]
        try:
            if zookeeper is None:
                self.controller = ServeProcess(["--controller-only", "--port", "0", "--data-dir",
                                                str(self.root / "controller"), *sets], self.root / "controller.log",
                                               *self._where(CONTROLLER))
            for b in range(brokers):
                self.start(b)
        except BaseException:
            self.stop()  # what did start, and the namespaces
            raise

    def _where(self, node) -> tuple[str, list[str]]:
        if self.network is None:
            return "127.0.0.1", []
        return self.network.address(node), self.network.exec_prefix(node)

    def start(self, b: int) -> None:
        """Start broker `b` (again: on its port and data, as a restarted Kafka broker)."""
        sets = [x for s in self.settings for x in ("--set", s)]
        metadata = ["--metadata", self.zookeeper] if self.zookeeper else [
            "--controller", f"{self._where(CONTROLLER)[0]}:{self.controller.port}"]
        self.brokers[b] = ServeProcess(["--broker-id", str(b), *metadata,
                                        "--port", str(self.ports.get(b, 0)), "--data-dir", str(self.root / "data"),
                                        *sets, *self.args], self.root / f"broker-{b}.log", *self._where(b))
        self.ports[b] = self.brokers[b].port

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{self._where(b)[0]}:{port}" for b, port in self.ports.items())

    def partition(self, b: int) -> None:
        """Cut broker `b` off from the other brokers and the controller; clients still
        reach it (Jepsen's isolated leader). Needs `network`."""
        self.network.isolate(b, [CONTROLLER, *(o for o in self.ports if o != b)])

    def heal(self, b: int) -> None:
        self.network.rejoin(b, [CONTROLLER, *(o for o in self.ports if o != b)])

    def slow(self, b: int) -> None:
        """Delay everything broker `b` sends (tc netem). Needs `network`."""
        self.network.slow(b)

    def fast(self, b: int) -> None:
        self.network.fast(b)

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
        for p in [*self.brokers.values(), *([self.controller] if self.controller else [])]:
            p.stop()
        if self.network is not None:
            self.network.close()


CONTROLLER = "controller"


class Network:
    """Each node its own network namespace, joined by veth pairs to a bridge in the host's
    namespace (where the clients are, at .1): links between two nodes are cut with
    blackhole routes in both namespaces (no iptables needed), so clients keep reaching
    both. Needs root (CAP_NET_ADMIN); `unavailable()` says why not."""

    def __init__(self, nodes: list, tag: str = "kp") -> None:
        # Names carry this process's id: two runs on one host (two test suites, two
        # `kafkaproof test --netns`) must not meet on one bridge. (Interface names: <= 15 bytes.)
        tag = f"{tag}{os.getpid() % 100_000}"
        self.tag, self.nodes = tag, list(nodes)
        self.bridge = f"{tag}br0"
        # A subnet per tag: two networks at once (two runs, two tests) must not share one.
        self.subnet = f"10.77.{zlib.crc32(tag.encode()) % 250}"
        try:
            self._ip("link", "add", self.bridge, "type", "bridge")
        except NemesisError as e:
            raise NemesisError(f"{e} (left by a run that did not end? `ip link del {self.bridge}`)") from None
        try:
            self._ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
            for node in self.nodes:
                ns, outer, inner = self._names(node)
                self._ip("netns", "add", ns)
                self._ip("link", "add", outer, "type", "veth", "peer", "name", inner)
                self._ip("link", "set", inner, "netns", ns)
                self._ip("link", "set", outer, "master", self.bridge)
                self._ip("link", "set", outer, "up")
                self._ip("-n", ns, "addr", "add", f"{self.address(node)}/24", "dev", inner)
                self._ip("-n", ns, "link", "set", inner, "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
        except NemesisError:
            self.close()
            raise

    def _names(self, node) -> tuple[str, str, str]:
        i = self.nodes.index(node)
        return f"{self.tag}-n{i}", f"{self.tag}v{i}", f"{self.tag}e{i}"

    def address(self, node) -> str:
        return f"{self.subnet}.{10 + self.nodes.index(node)}"

    def exec_prefix(self, node) -> list[str]:
        return ["ip", "netns", "exec", self._names(node)[0]]

    @staticmethod
    def _ip(*args: str) -> None:
        done = subprocess.run(["ip", *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise NemesisError(f"ip {' '.join(args)}: {done.stderr.strip()}")

    def _routes(self, verb: str, a, b) -> None:
        for x, y in ((a, b), (b, a)):
            self._ip("-n", self._names(x)[0], "route", verb, "blackhole", f"{self.address(y)}/32")

    def isolate(self, node, others: list) -> None:
        for other in others:
            self._routes("add", node, other)

    def rejoin(self, node, others: list) -> None:
        for other in others:
            self._routes("del", node, other)

    def slow(self, node, mean_ms: int = 200, jitter_ms: int = 100) -> None:
        """Every packet `node` sends waits mean +- jitter (tc netem on its side of the veth)."""
        ns, _, inner = self._names(node)
        self._tc(ns, "add", inner, "netem", "delay", f"{mean_ms}ms", f"{jitter_ms}ms")

    def fast(self, node) -> None:
        ns, _, inner = self._names(node)
        self._tc(ns, "del", inner)

    def _tc(self, ns: str, verb: str, dev: str, *spec: str) -> None:
        done = subprocess.run(["tc", "-n", ns, "qdisc", verb, "dev", dev, "root", *spec], capture_output=True, text=True)
        if done.returncode != 0:
            raise NemesisError(f"tc qdisc {verb} on {ns}: {done.stderr.strip()} (Debian's iproute2 has tc)")

    def close(self) -> None:
        for node in self.nodes:
            ns, outer, _ = self._names(node)
            subprocess.run(["ip", "link", "del", outer], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    @staticmethod
    def netem_unavailable() -> str | None:
        """Why `slow` cannot work here (None: it can): tc netem needs the kernel's sch_netem."""
        probe = f"kp-probe-{random.randrange(1 << 30)}"
        if subprocess.run(["ip", "netns", "add", probe], capture_output=True).returncode != 0:
            return "cannot create a network namespace (needs root)"
        try:
            done = subprocess.run(["tc", "-n", probe, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
                                  capture_output=True, text=True)
            return None if done.returncode == 0 else f"tc netem: {done.stderr.strip()} (the kernel lacks sch_netem?)"
        except FileNotFoundError:
            return "no `tc` command (Debian's iproute2)"
        finally:
            subprocess.run(["ip", "netns", "del", probe], capture_output=True)

    @staticmethod
    def unavailable() -> str | None:
        """Why namespaces cannot be made here (None: they can)."""
        import shutil

        if shutil.which("ip") is None:
            return "no `ip` command (Debian's iproute2)"
        probe = f"kp-probe-{random.randrange(1 << 30)}"
        done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
        if done.returncode != 0:
            return f"cannot create a network namespace: {done.stderr.strip() or done.returncode} (needs root)"
        subprocess.run(["ip", "netns", "del", probe], capture_output=True)
        return None


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
        self.failure: NemesisError | None = None  # a fault that could not be injected stops the nemesis

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
            try:
                if self.script:
                    for at, f, node in self.script:
                        if self._stop.wait(max(0.0, started + at - time.monotonic())):
                            return
                        self.apply(f, node)
                    return
                while not self._stop.wait(self.interval):
                    self.step()
            except NemesisError as e:
                self.failure = e
        self._thread = threading.Thread(target=loop, name="nemesis", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop injecting and heal whatever is running; then raise what went wrong, if a
        fault could not be injected (the run's faults are not what was asked)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        while self.running:
            f, node = self.running[-1]
            self.apply(HEALS[f], node)
        if self.failure is not None:
            raise self.failure


def process_actions(cluster: ProcessCluster) -> Callable[[str, object], None]:
    """What each fault does to a ProcessCluster's broker."""
    def act(f: str, b) -> None:
        {"kill": cluster.kill, "start": cluster.start, "pause": cluster.pause, "resume": cluster.resume,
         "partition": cluster.partition, "heal": cluster.heal, "slow": cluster.slow, "fast": cluster.fast}[f](b)
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
