"""Transactional applications on the simulated cluster.

`TxnProducerApp`: transaction after transaction, each of 1-4 sends to random partitions,
committed (or, one time in `abort_rate`, aborted). As Kafka's documentation advises:
after an abortable error it aborts and goes on; when fenced (PRODUCER_FENCED, a fatal
error) it closes the producer and starts a new one with the same transactional.id.

`zombie()` starts a second instance of the same transactional.id while the first keeps
running with what it believes: the first must be fenced, and nothing it writes after
that may become visible.
"""

from __future__ import annotations

from collections.abc import Mapping

from kafkaproof.impl.client.transactions import ABORTABLE, FATAL, IN_TRANSACTION, READY
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.impl.sim.cluster import Cluster, ProducerHandle
from kafkaproof.properties import check_all


class TxnProducerApp:
    def __init__(self, c: Cluster, name: str, props: Mapping[str, str], topic: str, abort_rate: float = 0.2,
                 pause_ms: int = 50, max_sends: list[int] | None = None) -> None:
        self.c, self.name, self.topic = c, name, topic
        self.props = {**props, "transactional.id": props.get("transactional.id", "txn") + f"-{name}"}
        self.abort_rate, self.pause_ms = abort_rate, pause_ms
        self.max_sends = max_sends  # [remaining] shared by all apps, for shrinking
        self.instances: list[ProducerHandle] = []
        self.values = iter(range(10**9))
        self.fenced = 0
        self.stopped = False
        self._start()

    def _start(self) -> None:
        p = self.c.producer(f"{self.name}.{len(self.instances)}", self.props, process=f"txn-{self.name}")
        self.instances.append(p)
        p.init_transactions(lambda error: self._initialized(p, error))

    def zombie(self) -> None:
        """A second instance takes over while the first still runs (a paused or
        partitioned instance that its supervisor replaced)."""
        self._start()

    def crash_instance(self) -> bool:
        """The application's process dies and is restarted with the same transactional.id
        (which fences the dead one and aborts what it left open). True if it died inside
        a transaction."""
        p = self.instances[-1]
        if not self._live(p):
            return False
        mid = p.txn_sends is not None
        p.crashed()
        self.c.crash(p.node)
        self._start()
        return mid

    def _live(self, p: ProducerHandle) -> bool:
        return p.node not in self.c.down

    def _initialized(self, p: ProducerHandle, error: ErrorCode) -> None:
        if error == ErrorCode.NONE:
            self.c.at(self.pause_ms, lambda: self._begin(p))
        else:
            self._fenced(p)

    def _begin(self, p: ProducerHandle) -> None:
        if not self._live(p) or p.proc.txn.state != READY or self.stopped:
            return  # (stopped: no new transaction; the open one finishes)
        p.begin_transaction()
        self._send(p, self.c.rng.randint(1, 4))

    def _send(self, p: ProducerHandle, left: int) -> None:
        if not self._live(p):
            return
        if p.proc.txn.state != IN_TRANSACTION or left == 0:
            return self._finish(p)
        if self.max_sends is None or self.max_sends[0] > 0:
            if self.max_sends is not None:
                self.max_sends[0] -= 1
            p.send(self.topic, b"k%d" % self.c.rng.randrange(16), b"%s-%d" % (self.name.encode(), next(self.values)))
        self.c.at(self.pause_ms // 2, lambda: self._send(p, left - 1))

    def _finish(self, p: ProducerHandle) -> None:
        state = p.proc.txn.state
        if state == FATAL:
            return self._fenced(p)
        if state == ABORTABLE or self.c.rng.random() < self.abort_rate:
            p.abort_transaction(lambda error: self._ended(p, error))
        else:
            p.commit_transaction(lambda error: self._committed(p, error))

    def _committed(self, p: ProducerHandle, error: ErrorCode) -> None:
        if error == ErrorCode.NONE:
            self.c.at(self.pause_ms, lambda: self._begin(p))
        elif p.proc.txn.state == FATAL:
            self._fenced(p)
        else:
            p.abort_transaction(lambda error: self._ended(p, error))

    def _ended(self, p: ProducerHandle, error: ErrorCode) -> None:
        if error == ErrorCode.NONE:
            self.c.at(self.pause_ms, lambda: self._begin(p))
        else:
            self._fenced(p)

    def _fenced(self, p: ProducerHandle) -> None:
        """Fatal: close this producer; the newest instance (if this is it) starts a new one."""
        if not self._live(p):
            return
        self.fenced += 1
        p.crashed()
        self.c.close_client(p.node)
        if p is self.instances[-1]:
            self._start()


# A late marker, three ways (tests/test_transactions.py and the demo): T1 ends while its
# marker is duplicated, the copy arriving 600 ms late; T2 starts at once and writes
# `second` - (wait ms, key), or (wait ms, None) to only wait - then ends.
LATE_MARKER = {
    # T1 committed; its late COMMIT marker commits T2's first writes; T2 then aborts.
    "G1a": (True, False, [(50, b"a")] * 20),
    # T1 aborted; its late ABORT marker aborts T2's first writes; T2 commits the rest.
    "torn-transaction": (False, True, [(50, b"a")] * 20),
    # ...and when T2 wrote only before the late marker, all of it is gone.
    "lost-transaction": (False, True, [(0, b"a"), (1000, None)]),
}


def late_marker(anomaly: str, kip890: bool, seed: int = 1) -> tuple[Cluster, list[str]]:
    """Run one LATE_MARKER scenario; returns the cluster and the transaction anomalies found."""
    first_commits, second_commits, second = LATE_MARKER[anomaly]
    c = Cluster(seed=seed, broker_props={"transaction.state.log.num.partitions": "3",
                                         "legacy.transactions.without.kip890": str(not kip890).lower()})
    c.create_topic("t", 2, 3)
    p = c.producer("p", {"transactional.id": "tx"}, process="app")
    ready: list[ErrorCode] = []
    p.init_transactions(ready.append)
    c.run_until(lambda: ready, timeout_ms=10_000)
    p.begin_transaction()
    p.send("t", b"a", b"t1")
    c.run_for(200)
    c.duplicate_late(m.WriteTxnMarkersRequest, 600, count=1)
    (p.commit_transaction if first_commits else p.abort_transaction)()
    c.run_for(100)
    p.begin_transaction()
    for i, (wait, key) in enumerate(second):
        c.run_for(wait)
        if key is not None:
            p.send("t", key, b"t2-%d" % i)
    c.run_for(200)
    (p.commit_transaction if second_commits else p.abort_transaction)()
    c.run_for(3000)
    committed = {("t", i): c.committed(TopicPartition("t", i)) for i in range(2)}
    return c, [v.name for v in check_all(c.history, committed)["transactions"]]
