"""The wire workload's second client: kafka-python (pure Python, its own protocol code),
with the same micro-operations and the same rules for ok, info and fail as
workload_confluent.ConfluentClient - so that one cluster can be judged through two clients."""

from __future__ import annotations

from kafkaproof.workload import Client, Definite, Indefinite, Options


class KafkaPythonClient(Client):
    def __init__(self, options: Options, process: int) -> None:
        from kafka import KafkaConsumer, KafkaProducer

        super().__init__(options, process)
        servers = options.bootstrap.split(",")
        timeout_ms = int(options.op_timeout * 1000)
        producer = {"bootstrap_servers": servers, "acks": "all" if options.acks in ("all", "-1") else int(options.acks),
                    "enable_idempotence": options.idempotence, "linger_ms": 0, "request_timeout_ms": timeout_ms,
                    "max_block_ms": timeout_ms}
        if options.txn:
            producer["transactional_id"] = f"kafkaproof-jepsen-{process}"
            producer["transaction_timeout_ms"] = int(options.op_timeout * 1500)  # as ConfluentClient's
        self.producer = KafkaProducer(**producer)
        self.consumer = KafkaConsumer(bootstrap_servers=servers, group_id="kafkaproof-jepsen",
                                      auto_offset_reset="earliest", enable_auto_commit=not options.txn,
                                      isolation_level="read_committed", session_timeout_ms=6000)
        self._futures: dict = {}  # value -> its send's future
        if options.txn:
            self.producer.init_transactions()

    def _tp(self, k: int):
        from kafka import TopicPartition

        return TopicPartition(self.o.topic, k)

    def assign(self, keys: list[int]) -> None:
        """Assign `keys`, keeping this consumer's place on those it already had."""
        self.consumer.assign([self._tp(k) for k in keys])
        for k in keys:
            if k in self.positions:
                self.consumer.seek(self._tp(k), self.positions[k])
        self._keep_places(keys)

    def subscribe(self, keys: list[int]) -> None:
        from kafka import ConsumerRebalanceListener

        client = self

        class Moved(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked) -> None:
                client._moved(revoked)

            def on_partitions_assigned(self, assigned) -> None:
                client._moved(assigned)

        self.consumer.subscribe([self.o.topic], listener=Moved())

    def _poll(self) -> dict:
        got: dict[int, list] = {}
        for tp, records in self.consumer.poll(timeout_ms=200, max_records=100).items():
            for r in records:
                self._read(got, tp.partition, r.offset, r.value)
        return got

    def run(self, mops: list[list]) -> list[list]:
        from kafka.errors import KafkaError

        if not self.o.txn:
            try:
                return self._run(mops)
            except KafkaError as e:
                raise Indefinite(f"{type(e).__name__}: {e}") from None
        try:
            self.producer.begin_transaction()
            return self._run(mops)
        except (Definite, Indefinite, KafkaError) as e:
            try:
                self.producer.abort_transaction()
            except KafkaError as abort:
                raise Indefinite(f"{e}; the abort failed: {type(abort).__name__}") from None
            self.rewind()
            raise Definite(f"aborted: {type(e).__name__}: {e}") from None

    def _run(self, mops: list[list]) -> list[list]:
        self._futures = {}
        return super()._run(mops)

    def _send(self, k: int, v: int) -> None:
        try:
            self._futures[v] = self.producer.send(self.o.topic, value=str(v).encode(), partition=k)
        except (AssertionError, ValueError) as e:
            raise Definite(str(e)) from None

    def _finish(self) -> dict[int, int]:
        from kafka.structs import OffsetAndMetadata

        if self.o.txn:
            assigned = self.consumer.assignment()
            offsets = {tp: OffsetAndMetadata(self.consumer.position(tp), "", -1) for tp in assigned}
            if offsets:
                self.producer.send_offsets_to_transaction(offsets, self.consumer.group_metadata())
            self.producer.commit_transaction()
        else:
            self.producer.flush(self.o.op_timeout)
        return {v: f.get(self.o.op_timeout).offset for v, f in self._futures.items()}

    def rewind(self) -> None:
        for tp in self.consumer.assignment():
            committed = self.consumer.committed(tp)
            if committed is not None:
                self.consumer.seek(tp, committed)
                self.positions[tp.partition] = committed
            else:
                self.positions.pop(tp.partition, None)

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.producer.close(timeout=1)
