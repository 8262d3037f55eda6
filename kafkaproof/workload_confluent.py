"""The wire workload's primary client: confluent-kafka (librdkafka, as kcat and most
non-Java clients use it). What it sees becomes the operation's type by workload.py's
rules: ok, fail only when nothing can have happened, else info."""

from __future__ import annotations

from kafkaproof.workload import CLIENT_LOG, Client, Definite, Indefinite, Options


class ConfluentClient(Client):
    """A producer and a consumer of librdkafka for one process."""

    def __init__(self, options: Options, process: int) -> None:
        from confluent_kafka import Consumer, Producer

        super().__init__(options, process)
        producer = {"bootstrap.servers": options.bootstrap, "acks": options.acks, "logger": CLIENT_LOG,
                    "enable.idempotence": options.idempotence, "linger.ms": 0,
                    "message.timeout.ms": int(options.op_timeout * 1000)}
        if options.txn:
            producer["transactional.id"] = f"kafkaproof-jepsen-{process}"
            # A crashed process leaves its transaction open, and read_committed polls stop
            # at it until the coordinator aborts it: after this, not the default minute.
            producer["transaction.timeout.ms"] = int(options.op_timeout * 1500)
        self.producer = Producer(producer)
        self.consumer = Consumer({"bootstrap.servers": options.bootstrap, "group.id": "kafkaproof-jepsen",
                                  "logger": CLIENT_LOG,
                                  "auto.offset.reset": "earliest", "enable.auto.commit": not options.txn,
                                  "isolation.level": "read_committed", "session.timeout.ms": 6000})
        self._acked: dict[int, int] = {}  # value -> offset, from delivery reports
        self._errors: list = []
        if options.txn:
            self.producer.init_transactions(options.op_timeout)

    # -- assignment --------------------------------------------------------------------

    def assign(self, keys: list[int]) -> None:
        """Assign `keys`, keeping this consumer's place on those it already had (librdkafka
        would otherwise go back to the group's committed offset)."""
        from confluent_kafka import TopicPartition

        self.consumer.assign([TopicPartition(self.o.topic, k, self.positions[k]) if k in self.positions
                              else TopicPartition(self.o.topic, k) for k in keys])
        self._keep_places(keys)

    def subscribe(self, keys: list[int]) -> None:
        def moved(_consumer, partitions) -> None:
            self._moved(partitions)
        self.consumer.subscribe([self.o.topic], on_assign=moved, on_revoke=moved)

    # -- micro-operations --------------------------------------------------------------

    def _poll(self) -> dict:
        got: dict[int, list] = {}
        for m in self.consumer.consume(num_messages=100, timeout=0.2):
            if not m.error():
                self._read(got, m.partition(), m.offset(), m.value())
        return got

    def run(self, mops: list[list]) -> list[list]:
        """Send and poll micro-operations (in a transaction with txn), completed."""
        from confluent_kafka import KafkaException

        if not self.o.txn:
            try:
                return self._run(mops)
            except KafkaException as e:
                raise Indefinite(e.args[0].str()) from None
        self.producer.begin_transaction()
        try:
            return self._run(mops)
        except (Definite, Indefinite, KafkaException) as e:
            self._aborted(e)
            raise  # (never reached: _aborted raises)

    def _aborted(self, cause: Exception) -> None:
        """A transaction that failed: aborted, it is a fail (nothing of it happened); if
        even the abort fails, or the commit's outcome is unknown, it is info."""
        from confluent_kafka import KafkaException

        if isinstance(cause, KafkaException) and not cause.args[0].txn_requires_abort():
            raise Indefinite(cause.args[0].str())
        try:
            self.producer.abort_transaction(self.o.op_timeout)
        except KafkaException as e:
            raise Indefinite(f"{cause}; the abort failed: {e.args[0].str()}") from None
        self.rewind()
        raise Definite(f"aborted: {cause}")

    def _run(self, mops: list[list]) -> list[list]:
        self._acked, self._errors = {}, []
        return super()._run(mops)

    def _send(self, k: int, v: int) -> None:
        from confluent_kafka import KafkaException

        def delivered(err, msg) -> None:
            if err is not None:
                self._errors.append(err)
            else:
                self._acked[v] = msg.offset()
        try:
            self.producer.produce(self.o.topic, str(v).encode(), partition=k, on_delivery=delivered)
        except (BufferError, KafkaException) as e:
            raise Definite(str(e)) from None

    def _finish(self) -> dict[int, int]:
        from confluent_kafka import KafkaError

        if self.o.txn:
            assigned = list(self.consumer.assignment())
            positions = [p for p in (self.consumer.position(assigned) if assigned else []) if p.offset >= 0]
            if positions:
                self.producer.send_offsets_to_transaction(positions, self.consumer.consumer_group_metadata(),
                                                          self.o.op_timeout)
            self.producer.commit_transaction(self.o.op_timeout)
        elif self.producer.flush(self.o.op_timeout) > 0:
            raise Indefinite("not acknowledged in time")
        if self._errors:
            if all(e.code() in (KafkaError.MSG_SIZE_TOO_LARGE, KafkaError._INVALID_ARG) for e in self._errors):
                raise Definite(self._errors[0].str())
            raise Indefinite(self._errors[0].str())
        return self._acked

    def rewind(self) -> None:
        """After an abort, polls start again from the group's committed offsets (Kafka's
        transactions roll the consumer's offsets back with the rest)."""
        assigned = self.consumer.assignment()
        for tp in self.consumer.committed(assigned, timeout=self.o.op_timeout) if assigned else []:
            if tp.offset >= 0:
                self.consumer.seek(tp)
                self.positions[tp.partition] = tp.offset
            else:
                self.positions.pop(tp.partition, None)

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            self.producer.flush(1)
