"""Producer and consumer settings: Kafka's keys and defaults (Kafka 3.x clients)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kafkaproof.impl.config import INT_MAX, ConfigError, Key, at_least, one_of, resolve


def _acks(v: str) -> str | None:
    return None if v in ("all", "-1", "0", "1") else "must be one of all, -1, 0, 1"


def _strategies(v: list[str]) -> str | None:
    from kafkaproof.impl.client.assignors import ASSIGNORS

    bad = [x for x in v if x not in ASSIGNORS]
    if not v or bad:
        return f"must list assignors among {', '.join(ASSIGNORS)}" + (f" (not {', '.join(bad)})" if bad else "")
    return None


PRODUCER_KEYS = (
    Key("acks", "string", "all", "Replicas that must have a write before it is acknowledged.", _acks),
    Key("retries", "int", INT_MAX, "Resends of a failed batch.", at_least(0)),
    Key("delivery.timeout.ms", "int", 120_000, "Upper bound on reporting a send's outcome.", at_least(1)),
    Key("request.timeout.ms", "int", 30_000, "A request unanswered this long failed.", at_least(1)),
    Key("linger.ms", "int", 0, "Wait this long for more records before sending a batch.", at_least(0)),
    Key("batch.size", "int", 16384, "Bytes per partition batch.", at_least(1)),
    Key("max.in.flight.requests.per.connection", "int", 5, "Unanswered requests per broker.", at_least(1)),
    Key("enable.idempotence", "bool", True, "Sequence numbers: retries never duplicate (Kafka 3+ default)."),
    Key("retry.backoff.ms", "int", 100, "Pause before a retry.", at_least(0)),
    Key("max.block.ms", "long", 60_000, "How long send() waits for the topic's metadata.", at_least(0)),
    Key("metadata.max.age.ms", "int", 300_000, "Refresh metadata at least this often.", at_least(0)),
    Key("partitioner", "string", "default", "kafkaproof: default | round-robin | random.",
        one_of("default", "round-robin", "random")),
    Key("client.id", "string", "", "A name for logs."),
    Key("transactional.id", "string", None, "Makes the producer transactional (needs idempotence)."),
    Key("transaction.timeout.ms", "int", 60_000, "The coordinator aborts a transaction open this long.",
        at_least(1)),
)

CONSUMER_KEYS = (
    Key("group.id", "string", None, "Consumer group; without one, no subscribe and no commits."),
    Key("enable.auto.commit", "bool", True, "Commit the positions of returned records at poll, periodically."),
    Key("auto.commit.interval.ms", "int", 5000, "Auto-commit period.", at_least(0)),
    Key("auto.offset.reset", "string", "latest", "Where to start without a valid position.",
        one_of("earliest", "latest", "none")),
    Key("isolation.level", "string", "read_uncommitted", "read_committed: only committed transactions, below the LSO.",
        one_of("read_uncommitted", "read_committed")),
    Key("fetch.min.bytes", "int", 1, "A fetch waits for this many bytes.", at_least(0)),
    Key("fetch.max.wait.ms", "int", 500, "...but no longer than this.", at_least(0)),
    Key("max.partition.fetch.bytes", "int", 1 << 20, "Bytes per partition per fetch.", at_least(1)),
    Key("request.timeout.ms", "int", 30_000, "A request unanswered this long failed.", at_least(1)),
    Key("retry.backoff.ms", "int", 100, "Pause before a retry.", at_least(0)),
    Key("max.poll.records", "int", 500, "Records returned by one poll.", at_least(1)),
    Key("session.timeout.ms", "int", 45_000, "The coordinator drops a member silent this long.", at_least(1)),
    Key("heartbeat.interval.ms", "int", 3000, "Heartbeats to the group coordinator.", at_least(1)),
    Key("max.poll.interval.ms", "int", 300_000, "A member that does not poll this long leaves its group.",
        at_least(1)),
    Key("partition.assignment.strategy", "list", ["range", "cooperative-sticky"],
        "Assignors, preferred first: range, roundrobin, sticky, cooperative-sticky.", _strategies),
    Key("metadata.max.age.ms", "int", 300_000, "Refresh metadata (new topics, partitions) this often.",
        at_least(0)),
    Key("client.id", "string", "", "A name for logs."),
)


@dataclass(frozen=True)
class ProducerConfig:
    acks: int = -1
    retries: int = INT_MAX
    delivery_timeout_ms: int = 120_000
    request_timeout_ms: int = 30_000
    linger_ms: int = 0
    batch_size: int = 16384
    max_in_flight: int = 5
    idempotence: bool = True
    retry_backoff_ms: int = 100
    metadata_max_age_ms: int = 300_000
    partitioner: str = "default"
    max_block_ms: int = 60_000
    transactional_id: str | None = None
    transaction_timeout_ms: int = 60_000

    @classmethod
    def from_properties(cls, raw: Mapping[str, str | tuple[str, str]]) -> ProducerConfig:
        v = resolve(PRODUCER_KEYS, raw, "producer")
        acks = -1 if v["acks"] in ("all", "-1") else int(v["acks"])
        idempotence = v["enable.idempotence"]
        explicit = "enable.idempotence" in raw
        # Kafka's ProducerConfig: idempotence needs acks=all, retries > 0 and at most 5 in
        # flight. Set explicitly, a conflict is an error; by default, it is switched off.
        problems = []
        if acks != -1:
            problems.append(f"acks must be all, not {v['acks']}")
        if v["retries"] == 0:
            problems.append("retries must be greater than 0")
        if v["max.in.flight.requests.per.connection"] > 5:
            problems.append("max.in.flight.requests.per.connection must be at most 5")
        transactional_id = v["transactional.id"] or None
        if transactional_id is not None and (problems or not idempotence):
            # Kafka: "Cannot set a transactional.id without also enabling idempotence."
            raise ConfigError(f"transactional.id={transactional_id} needs idempotence: "
                              + ("; ".join(problems) if problems else "enable.idempotence is false"))
        if idempotence and problems:
            if explicit:
                raise ConfigError(f"enable.idempotence=true: {'; '.join(problems)}")
            idempotence = False
        return cls(acks, v["retries"], v["delivery.timeout.ms"], v["request.timeout.ms"], v["linger.ms"],
                   v["batch.size"], v["max.in.flight.requests.per.connection"], idempotence,
                   v["retry.backoff.ms"], v["metadata.max.age.ms"], v["partitioner"], v["max.block.ms"],
                   transactional_id, v["transaction.timeout.ms"])


@dataclass(frozen=True)
class ConsumerConfig:
    auto_offset_reset: str = "latest"
    fetch_min_bytes: int = 1
    fetch_max_wait_ms: int = 500
    max_partition_fetch_bytes: int = 1 << 20
    request_timeout_ms: int = 30_000
    retry_backoff_ms: int = 100
    max_poll_records: int = 500
    isolation_level: str = "read_uncommitted"
    group_id: str | None = None
    enable_auto_commit: bool = False  # Kafka: true by default, but only with a group.id
    auto_commit_interval_ms: int = 5000
    session_timeout_ms: int = 45_000
    heartbeat_interval_ms: int = 3000
    max_poll_interval_ms: int = 300_000
    assignment_strategy: tuple[str, ...] = ("range", "cooperative-sticky")
    metadata_max_age_ms: int = 300_000

    @classmethod
    def from_properties(cls, raw: Mapping[str, str | tuple[str, str]]) -> ConsumerConfig:
        v = resolve(CONSUMER_KEYS, raw, "consumer")
        return cls(v["auto.offset.reset"], v["fetch.min.bytes"], v["fetch.max.wait.ms"],
                   v["max.partition.fetch.bytes"], v["request.timeout.ms"], v["retry.backoff.ms"],
                   v["max.poll.records"], v["isolation.level"], v["group.id"] or None,
                   v["enable.auto.commit"] and bool(v["group.id"]), v["auto.commit.interval.ms"],
                   v["session.timeout.ms"], v["heartbeat.interval.ms"], v["max.poll.interval.ms"],
                   tuple(v["partition.assignment.strategy"]), v["metadata.max.age.ms"])
