"""The transactional producer's side of KIP-98 (Kafka's TransactionManager).

init_transactions -> begin_transaction -> send ... [send_offsets_to_transaction] ->
commit_transaction or abort_transaction. Requests to the transaction coordinator go one
at a time, in order, each retried until it succeeds or fails for good:

- a partition's batches wait until AddPartitionsToTxn has added it;
- commit first waits for every batch of the transaction to be answered (flush);
- abort drops what has not been sent and waits for what is in flight;
- a failed send makes the transaction abortable: commit fails, abort is the way on;
  after an abort that lost batches of unknown outcome, the producer takes a new epoch
  (KIP-360), so none of them can land in a later transaction;
- PRODUCER_FENCED (a newer instance of this transactional.id) is fatal: close the producer.

The coordinator answers EndTxn with the epoch the next transaction uses: bumped with
KIP-890, so sequence numbers start again from 0.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import Effects, TopicPartition

if TYPE_CHECKING:
    from kafkaproof.impl.client.producer import Producer

Done = Callable[[ErrorCode], None]

UNINITIALIZED, INITIALIZING, READY = "uninitialized", "initializing", "ready"
IN_TRANSACTION, COMMITTING, ABORTING = "in-transaction", "committing", "aborting"
ABORTABLE, FATAL = "abortable-error", "fatal-error"

COORDINATOR_ERRORS = {ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE,
                      ErrorCode.COORDINATOR_LOAD_IN_PROGRESS, ErrorCode.NETWORK_EXCEPTION,
                      ErrorCode.REQUEST_TIMED_OUT}
FENCED = {ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH, ErrorCode.INVALID_PRODUCER_ID_MAPPING,
          ErrorCode.TRANSACTION_COORDINATOR_FENCED}
# Kafka retries CONCURRENT_TRANSACTIONS after 20 ms rather than retry.backoff.ms (KAFKA-5477).
CONCURRENT_RETRY_MS = 20


class TransactionError(Exception):
    """A transactional call made in the wrong state (Kafka's IllegalStateException /
    KafkaException): the application's mistake, reported at once."""


@dataclass
class Step:
    kind: str  # init | add | offsets | txn-commit | end
    done: Done | None = None
    payload: object = None


class TransactionManager:
    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.tid = producer.config.transactional_id
        self.state = UNINITIALIZED
        self.error: ErrorCode | None = None  # why we are abortable or fatal
        self.coordinator: str | None = None
        self.group_coordinators: dict[str, str] = {}
        self.added: set[TopicPartition] = set()
        self.to_add: set[TopicPartition] = set()
        self.steps: deque[Step] = deque()
        self.inflight: tuple[int, Step] | None = None
        self.retry_at = 0
        self.epoch_bump_needed = False

    # -- the application's calls ---------------------------------------------------------

    def _require(self, *states: str) -> None:
        if self.state == FATAL:
            raise TransactionError(f"the producer is fenced or failed ({self.error.name}): close it")
        if self.state not in states:
            raise TransactionError(f"not allowed in state {self.state} (needs {' or '.join(states)})")

    def init(self, done: Done, now: int, fx: Effects) -> None:
        self._require(UNINITIALIZED, READY)
        self.state = INITIALIZING
        self.steps.append(Step("init", done))
        self.poll(now, fx)

    def begin(self) -> None:
        self._require(READY)
        self.state = IN_TRANSACTION
        self.added.clear()

    def sendable(self, tp: TopicPartition) -> bool:
        """May a batch for `tp` go out? Only once the coordinator has added it."""
        return self.state in (IN_TRANSACTION, COMMITTING) and tp in self.added

    def wants(self, tp: TopicPartition, now: int, fx: Effects) -> None:
        """A record for `tp` was sent: make sure the partition gets added."""
        if tp in self.added or tp in self.to_add or self.state != IN_TRANSACTION:
            return
        self.to_add.add(tp)
        if not any(s.kind == "add" for s in self.steps):
            self.steps.append(Step("add"))
        self.poll(now, fx)

    def send_offsets(self, offsets: dict[TopicPartition, int], group: tuple[str, int, str], done: Done,
                     now: int, fx: Effects) -> None:
        """sendOffsetsToTransaction(offsets, consumer.groupMetadata()): group = (id, generation, member)."""
        self._require(IN_TRANSACTION)
        self.steps.append(Step("offsets", None, group[0]))
        self.steps.append(Step("txn-commit", done, (offsets, group)))
        self.poll(now, fx)

    def commit(self, done: Done, now: int, fx: Effects) -> None:
        if self.state == ABORTABLE:
            done(self.error)  # the transaction cannot commit: the application must abort
            return
        self._require(IN_TRANSACTION)
        self.state = COMMITTING
        self.steps.append(Step("end", done, True))
        self.poll(now, fx)

    def abort(self, done: Done, now: int, fx: Effects) -> None:
        self._require(IN_TRANSACTION, ABORTABLE, COMMITTING)
        self.state = ABORTING
        self.to_add.clear()
        dropped = [s for s in self.steps if s.kind != "init"]
        self.steps = deque(s for s in self.steps if s.kind == "init")
        for s in dropped:
            if s.done is not None:
                s.done(ErrorCode.INVALID_TXN_STATE)
        self.producer.fail_unsent(ErrorCode.INVALID_TXN_STATE)
        self.steps.append(Step("end", done, False))
        self.poll(now, fx)

    # -- errors from the data path ---------------------------------------------------------

    def batch_failed(self, error: ErrorCode, maybe_written: bool) -> None:
        if maybe_written or error in FENCED or error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER:
            self.epoch_bump_needed = True
        if error == ErrorCode.PRODUCER_FENCED:
            self._fatal(error)
        elif self.state in (IN_TRANSACTION, COMMITTING):
            self.state, self.error = ABORTABLE, error
            for s in [s for s in self.steps if s.kind == "end" and s.payload is True]:
                self.steps.remove(s)
                s.done(error)

    def _fatal(self, error: ErrorCode) -> None:
        self.state, self.error = FATAL, error
        steps, self.steps = list(self.steps), deque()
        for s in steps:
            if s.done is not None:
                s.done(error)

    # -- sending the steps, one at a time -----------------------------------------------------

    def poll(self, now: int, fx: Effects) -> None:
        if self.inflight is not None or not self.steps or now < self.retry_at or self.state == FATAL:
            return
        step = self.steps[0]
        p = self.producer
        if step.kind == "end" and p.has_unfinished():
            return  # commit flushes first; abort waits for what is in flight
        if step.kind == "end" and not self.added:
            self.steps.popleft()  # nothing was added: nothing to end at the coordinator
            self._ended(step, p.producer_epoch)
            return self.poll(now, fx)
        if step.kind == "txn-commit":
            group = step.payload[1][0]
            node = self.group_coordinators.get(group)
            if node is None:
                return self._send(step, None, m.FindCoordinatorRequest(p._next_corr(), group, m.GROUP), now, fx)
            offsets, (group, generation, member) = step.payload
            msg = m.TxnOffsetCommitRequest(p._next_corr(), self.tid, group, p.producer_id, p.producer_epoch,
                                           generation, member, tuple(sorted(offsets.items())))
            return self._send(step, node, msg, now, fx)
        if self.coordinator is None:
            return self._send(step, None, m.FindCoordinatorRequest(p._next_corr(), self.tid, m.TRANSACTION), now, fx)
        corr = p._next_corr()
        if step.kind == "init":
            msg: object = m.InitProducerIdRequest(corr, self.tid, p.config.transaction_timeout_ms)
        elif step.kind == "add":
            step.payload = tuple(sorted(self.to_add))
            msg = m.AddPartitionsToTxnRequest(corr, self.tid, p.producer_id, p.producer_epoch, step.payload)
        elif step.kind == "offsets":
            msg = m.AddOffsetsToTxnRequest(corr, self.tid, p.producer_id, p.producer_epoch, step.payload)
        else:
            msg = m.EndTxnRequest(corr, self.tid, p.producer_id, p.producer_epoch, step.payload)
        self._send(step, self.coordinator, msg, now, fx)

    def _send(self, step: Step, node: str | None, msg, now: int, fx: Effects) -> None:
        p = self.producer
        dst = node or p._next_bootstrap()
        self.inflight = (msg.correlation_id, step)
        p._control_node[msg.correlation_id] = dst
        fx.send(dst, msg)
        fx.timer(("txn-timeout", msg.correlation_id), now + p.config.request_timeout_ms)

    def owns(self, corr: int) -> bool:
        return self.inflight is not None and self.inflight[0] == corr

    def _retry(self, now: int, fx: Effects, delay: int | None = None) -> None:
        self.retry_at = now + (self.producer.config.retry_backoff_ms if delay is None else delay)
        fx.timer(("txn-retry",), self.retry_at)

    def handle(self, msg, now: int, fx: Effects) -> None:
        """A response to the step in flight (or its timeout: msg None)."""
        corr, step = self.inflight
        self.inflight = None
        self.producer._control_node.pop(corr, None)
        if not self.steps or self.steps[0] is not step:
            return self.poll(now, fx)  # dropped by an abort meanwhile
        error = ErrorCode.REQUEST_TIMED_OUT if msg is None else msg.error
        if isinstance(msg, m.FindCoordinatorResponse):
            if error == ErrorCode.NONE:
                node = m.broker_node(msg.node_id)
                if step.kind == "txn-commit":
                    self.group_coordinators[step.payload[1][0]] = node
                else:
                    self.coordinator = node
                self.poll(now, fx)
            else:
                self._retry(now, fx)
            return
        if error in COORDINATOR_ERRORS:
            if step.kind == "txn-commit":
                self.group_coordinators.pop(step.payload[1][0], None)
            else:
                self.coordinator = None
            return self._retry(now, fx)
        if error == ErrorCode.CONCURRENT_TRANSACTIONS:
            return self._retry(now, fx, CONCURRENT_RETRY_MS)
        if error in FENCED:
            return self._fatal(ErrorCode.PRODUCER_FENCED)
        self.steps.popleft()
        if step.kind in ("init", "end") and error != ErrorCode.NONE:
            self._fatal(error)
            if step.done is not None:
                step.done(error)
            return
        if step.kind == "init":
            self.producer.new_epoch(msg.producer_id, msg.producer_epoch)
            self.epoch_bump_needed = False
            self.state = READY
        elif step.kind == "add":
            if error == ErrorCode.NONE:
                self.added |= set(step.payload)
                self.to_add -= set(step.payload)
                if self.to_add:
                    self.steps.appendleft(Step("add"))
            else:
                self.batch_failed(error, False)
        elif step.kind in ("offsets", "txn-commit"):
            if error != ErrorCode.NONE:
                # E.g. ILLEGAL_GENERATION: a newer member owns the input now (KIP-447); this
                # transaction must not commit (Kafka's CommitFailedException, abortable).
                self.batch_failed(error, False)
        elif step.kind == "end":
            self._ended(step, msg.producer_epoch)
            return self.poll(now, fx)
        if step.done is not None:
            step.done(error)
        self.poll(now, fx)

    def _ended(self, step: Step, epoch: int) -> None:
        p = self.producer
        self.added.clear()
        if epoch > p.producer_epoch:
            p.new_epoch(p.producer_id, epoch)  # KIP-890: a new epoch per transaction
        self.error = None
        if self.epoch_bump_needed:
            # Batches of unknown fate: a new epoch fences them before the next transaction;
            # the abort returns once it is done (as Kafka's abortTransaction blocks).
            self.state = INITIALIZING
            self.steps.appendleft(Step("init", step.done))
        else:
            self.state = READY
            step.done(ErrorCode.NONE)
