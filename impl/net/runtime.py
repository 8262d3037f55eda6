"""The core thread: sans-IO processes on wall-clock time.

One thread runs every step of every process it hosts (brokers, controller), so the
state machines need no locks - as in the simulator, only here time is real, disks are
files and clients are sockets. Its inbox is a priority queue: control-plane messages
(LeaderAndIsr, UpdateMetadata, heartbeats, AlterPartition) go before queued data-plane
requests, which is what Kafka's separate control-plane listener is for (KIP-291). The
timer heap is the Purgatory's clock: delayed produce and fetch requests complete or
expire through it.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable

from kafkaproof.impl.protocol.messages import CONTROL_PLANE, Send, SetTimer
from kafkaproof.impl.protocol.process import Process, TimerTable

log = logging.getLogger("kafkaproof.runtime")
CONTROL, DATA, CALL = 0, 1, 1


def wall_ms() -> int:
    return int(time.time() * 1000)


class Runtime:
    def __init__(self, clock: Callable[[], int] = wall_ms) -> None:
        self.clock = clock
        self.procs: dict[str, Process] = {}
        # nodes outside the core (client connections): node -> called on the core thread
        self.outside: dict[str, Callable[[object], None]] = {}
        self.transport = None  # to nodes in other processes (peers.Transport), if any
        self._inbox: queue.PriorityQueue = queue.PriorityQueue()
        self._seq = itertools.count()
        self._timers: list[tuple[int, int, str, tuple, int]] = []
        self.timers = TimerTable()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kafkaproof-core", daemon=True)
        self.steps = 0

    # -- from any thread ---------------------------------------------------------------------

    def send(self, dst: str, src: str, message: object, plane: str = "data") -> None:
        """To a node here (queued for the core thread) or in another process."""
        if dst in self.procs or dst in self.outside:
            self.post(dst, src, message, plane)
        elif self.transport is not None:
            self.transport.send(dst, src, message, plane)

    def post(self, dst: str, src: str, message: object, plane: str = "data") -> None:
        self._inbox.put((CONTROL if plane == CONTROL_PLANE else DATA, next(self._seq), ("deliver", dst, src, message)))

    def call(self, fn: Callable[[], None]) -> None:
        """Run `fn` on the core thread (admin actions on a process, e.g. creating a topic)."""
        self._inbox.put((CALL, next(self._seq), ("call", fn)))

    def call_wait(self, fn: Callable[[], object], timeout_s: float = 10) -> object:
        done, box = threading.Event(), {}

        def run() -> None:
            try:
                box["value"] = fn()
            except BaseException as e:  # handed back to the caller's thread
                box["error"] = e
            done.set()

        self.call(run)
        if not done.wait(timeout_s):
            raise TimeoutError("the core thread did not answer")
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def start(self) -> None:
        self._thread.start()

    def on_core(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, timeout_s: float = 10) -> None:
        self._stopping.set()
        self._inbox.put((CONTROL, next(self._seq), ("stop",)))
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout_s)

    # -- on the core thread ------------------------------------------------------------------

    def spawn(self, node: str, proc) -> None:
        self.procs[node] = proc
        self.apply(node, proc.start(self.clock()))

    def apply(self, node: str, effects: Iterable) -> None:
        for fx in effects:
            if isinstance(fx, Send):
                self.send(fx.dst, node, fx.message, fx.plane)
            elif isinstance(fx, SetTimer):
                token = self.timers.set(node, fx.key)
                heapq.heappush(self._timers, (fx.at, next(self._seq), node, fx.key, token))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            now = self.clock()
            while self._timers and self._timers[0][0] <= now:
                _, _, node, key, token = heapq.heappop(self._timers)
                if self.timers.live(node, key, token) and node in self.procs:
                    self._step(node, lambda p, k=key: p.on_timer(k, self.clock()))
            wait = (self._timers[0][0] - self.clock()) / 1000 if self._timers else 0.1
            try:
                _, _, item = self._inbox.get(timeout=max(0.0, min(wait, 0.1)))
            except queue.Empty:
                continue
            if item[0] == "stop":
                break
            if item[0] == "call":
                self._guard(item[1])
                continue
            self._deliver(*item[1:])

    def _deliver(self, dst: str, src: str, message: object) -> None:
        if dst in self.procs:
            self._step(dst, lambda p: p.handle(src, message, self.clock()))
        elif dst in self.outside:
            self._guard(lambda: self.outside[dst](message))

    def _step(self, node: str, run: Callable[[object], list]) -> None:
        self.steps += 1
        try:
            effects = run(self.procs[node])
        except Exception:
            # A bug must not take the whole cluster down with it: log it, drop the step.
            log.exception("%s failed a step", node)
            return
        self.apply(node, effects)

    def _guard(self, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:
            log.exception("core call failed")
