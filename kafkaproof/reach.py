"""What verify's models reach: every configuration key, sorted for every guarantee.

A key is, for one guarantee:

- READ: it enters the symbolic model (verify.values_of carries it; tests/test_reach.py
  fails when a READ key stops changing what the model sees);
- COVERED: the model lets it be anything - a timeout or pace becomes "at any moment" -
  so every value is covered (the reason says how);
- IRRELEVANT: no value can change the guarantee (the reason says why);
- ASSUMED: the model builds in one behaviour (Kafka's modern default); other values are
  relevant but not modelled, and a PROVED for that guarantee becomes UNKNOWN naming the
  key (`unmodelled`). The legacy switches are the example: z3's model has KIP-101/279/320
  and 890, so `legacy.truncate.to.high.watermark=true` is never proved durable; for the
  three replication switches verify then asks the explorer, which has each variant.

A key the table does not list is an error (tests/test_reach.py walks every key of
impl/config), so a new setting cannot slip past the verifier silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kafkaproof.impl.broker.config import BROKER_KEYS
from kafkaproof.impl.client.config import CONSUMER_KEYS, PRODUCER_KEYS
from kafkaproof.model.symbolic import GUARANTEES

READ, COVERED, IRRELEVANT, ASSUMED = "read", "covered", "irrelevant", "assumed"

PARTITION = ("durability", "read-your-writes", "monotonic-reads")
# exactly-once and partition-order are also derived from the partition model's lost
# records (verify.check), so they read what it reads.
PRODUCER = ("exactly-once", "partition-order")
REPLICATION = PARTITION + PRODUCER
CONSUMER = ("consumer-no-loss", "consumer-no-duplicates")
ISOLATION = ("no-aborted-reads",)
AVAILABILITY = ("availability",)
DELIVERY = ("delivery",)


@dataclass(frozen=True)
class Rule:
    guarantees: tuple[str, ...]
    kind: str  # READ | COVERED | ASSUMED
    why: str
    assumes: tuple[str, ...] = ()  # ASSUMED: the values the model's behaviour is (lower case; "" = unset)
    # ASSUMED: other values only take behaviours away (a protection the model lacks), so a
    # violation the model finds may not happen either: VIOLATED is UNKNOWN too, not only PROVED.
    protects: bool = False


@dataclass(frozen=True)
class Reach:
    rules: tuple[Rule, ...]
    irrelevant: str  # why the guarantees no rule names cannot depend on the key


def _r(irrelevant: str, *rules: Rule) -> Reach:
    return Reach(rules, irrelevant)


TIMING = "timing: the model's steps happen at any moment, so any value is covered"
NOT_DATA = "where and how the log is stored on disk, not what it holds"
RUNTIME = "the real runtime's threads and sockets: the simulator and the models have none"
GROUPS_ONLY = "group coordination: only the consumer guarantees depend on it"
LOG_GIVEN = "the consumer and isolation models take the log as given"
FROM_THE_LOG = "the consumer and isolation models start from a record in the log"
# The producer model's broker refuses or loses any request at any step, whatever makes it.
DELIVERY_BROKER = "the producer model's broker may refuse or lose any request, whatever its configuration"
LEGACY = "z3's model has the fix (false); verify asks the explorer (model/replication.py), which has this variant"

KEYS: dict[str, Reach] = {
    # -- broker: replication -------------------------------------------------------------
    "default.replication.factor": _r(
        LOG_GIVEN + " (its losses are durability's)",
        Rule(REPLICATION + AVAILABILITY, READ, "the partition's replicas")),
    "min.insync.replicas": _r(
        LOG_GIVEN,
        Rule(REPLICATION + AVAILABILITY, READ, "acks=all appends need this many ISR members")),
    "unclean.leader.election.enable": _r(
        LOG_GIVEN,
        Rule(REPLICATION, READ, "which replicas may be elected")),
    "replica.lag.time.max.ms": _r(
        "only who is in the ISR depends on it",
        Rule(REPLICATION, COVERED, "a follower may leave the ISR at any step (shrink-isr), whatever the lag time")),
    **{k: _r("replication's pace matters only to the partition's guarantees",
             Rule(REPLICATION, COVERED, "a follower copies the leader at any step, or not at all"))
       for k in ("replica.fetch.wait.max.ms", "replica.fetch.max.bytes", "replica.fetch.backoff.ms",
                 "replica.socket.timeout.ms")},
    "replica.high.watermark.checkpoint.interval.ms": _r(
        "with leader epochs (KIP-101) a restarted follower truncates by epoch, not by its checkpointed high"
        " watermark (the legacy switch that brings that back is ASSUMED false)"),
    **{k: _r("failure detection matters only to the partition's guarantees",
             Rule(REPLICATION, COVERED, "the controller learns of a crash at any later step"))
       for k in ("broker.heartbeat.interval.ms", "broker.session.timeout.ms")},
    "num.partitions": _r("every guarantee is per partition; the models hold one"),
    # -- broker: internal topics and coordinators ----------------------------------------
    "offsets.topic.num.partitions": _r("which partition of __consumer_offsets holds a group's commits"),
    "offsets.topic.replication.factor": _r(
        "commits matter only to the consumer guarantees",
        Rule(("consumer-no-duplicates",), READ, "a lost commit replays processed records: verify checks that"
             " __consumer_offsets keeps acknowledged commits (its durability at this replication factor, acks=all)")),
    "offsets.commit.timeout.ms": _r(GROUPS_ONLY, Rule(CONSUMER, COVERED, "a commit may fail at any step")),
    **{k: _r(GROUPS_ONLY, Rule(CONSUMER, COVERED, "a member may crash and restart from the committed offset"
                                                  " at any step"))
       for k in ("group.initial.rebalance.delay.ms", "group.min.session.timeout.ms",
                 "group.max.session.timeout.ms")},
    "transaction.state.log.num.partitions": _r("which partition of __transaction_state holds a transaction"),
    "transaction.state.log.min.isr": _r(
        "a lost transaction decision leaves its records below an open transaction, which read_committed never"
        " returns (the last stable offset stays behind them)"),
    **{k: _r("a transactional id is forgotten only with no transaction open: its producer's next transaction"
             " starts with a new producer id")
       for k in ("transactional.id.expiration.ms", "transaction.remove.expired.transaction.cleanup.interval.ms")},
    "transaction.state.log.replication.factor": _r(
        "a lost transaction decision leaves its records below an open transaction, which read_committed never"
        " returns (the last stable offset stays behind them)"),
    **{k: _r("transaction timing matters only to aborted reads",
             Rule(ISOLATION, COVERED, "a transaction may end (commit or abort) at any step"))
       for k in ("transaction.max.timeout.ms", "transaction.abort.timed.out.transaction.cleanup.interval.ms")},
    **{k: _r(RUNTIME) for k in ("num.network.threads", "num.io.threads", "queued.max.requests",
                                "socket.request.max.bytes", "max.incremental.fetch.session.cache.slots")},
    **{k: _r("who may connect changes no guarantee of those who do: the simulator and the models have no"
             " listeners") for k in ("listeners", "listener.security.protocol.map", "sasl.enabled.mechanisms",
                                     "ssl.keystore.type", "ssl.keystore.location", "ssl.key.password",
                                     "ssl.truststore.type", "ssl.truststore.location", "ssl.client.auth",
                                     "security.inter.broker.protocol", "inter.broker.listener.name")},
    **{k: _r("where the real runtime keeps its metadata: the models assume a linearizable store that fences"
             " a deposed controller, which ZooKeeper (its zkVersion checks) is") for k in (
        "zookeeper.connect", "zookeeper.session.timeout.ms", "zookeeper.connection.timeout.ms")},
    **{k: _r("a request the authorizer refuses is answered with an error and changes nothing: the guarantees"
             " are about the requests served, which the ACLs do not alter")
       for k in ("authorizer.class.name", "super.users", "allow.everyone.if.no.acl.found")},
    # -- broker: legacy switches (historical behaviours, modelled fixed) ----------------
    "legacy.truncate.to.high.watermark": _r(
        "truncation matters only to the partition's guarantees",
        Rule(REPLICATION, ASSUMED, "pre-KIP-101 truncation to the high watermark; " + LEGACY, ("false",))),
    "legacy.kip101.without.kip279": _r(
        "truncation matters only to the partition's guarantees",
        Rule(REPLICATION, ASSUMED, "KIP-101 without KIP-279's fix for fast leader changes; " + LEGACY, ("false",))),
    "eligible.leader.replicas.enable": _r(
        "which replica may lead matters only to the partition's guarantees; availability (live replicas, caught"
        " up, against min.insync.replicas) is the same under either election order: acks=all needs"
        " min.insync.replicas in the ISR either way, and where 3.x waits for its last ISR member KIP-966 waits"
        " for the same broker - from the ELR, or as the last known leader",
        Rule(REPLICATION, READ, "KIP-966: strict min ISR, eligible leader replicas, elections ISR -> ELR ->"
             " last known leader, a restart (an unclean shutdown) leaves ISR and ELR")),
    "legacy.no.fetch.epoch.fencing": _r(
        "fetch fencing matters only to the partition's guarantees",
        Rule(REPLICATION, ASSUMED, "pre-KIP-320 fetches without leader epochs; " + LEGACY, ("false",))),
    "legacy.transactions.without.kip890": _r(
        "transaction markers matter only to transactional reads",
        Rule(ISOLATION + PRODUCER, ASSUMED, "pre-KIP-890 transactions (a late marker ends the next"
             " transaction); the models have the fix (false)", ("false",))),
    # -- broker: the log -----------------------------------------------------------------
    "log.flush.interval.messages": _r(
        "fsync matters only where a power loss can take the log",
        Rule(REPLICATION, READ, "fsync after every message (1), or never: any other value is modelled as never,"
             " which can only add losses")),
    "log.flush.interval.ms": _r(
        "fsync matters only where a power loss can take the log",
        Rule(REPLICATION, COVERED, "timed fsync is modelled as none, which can only add losses")),
    **{k: _r(NOT_DATA) for k in ("log.segment.bytes", "log.roll.ms", "log.roll.hours", "log.index.interval.bytes",
                                 "log.index.size.max.bytes")},
    **{k: _r("retention deletes only what the consumer guarantees and durability judge",
             Rule(PARTITION + CONSUMER, ASSUMED, "deletion by retention; the model keeps every record",
                  assumes))
       for k, assumes in (("log.retention.bytes", ("-1",)), ("log.retention.ms", ("", "-1")),
                          ("log.retention.hours", ("168",)))},
    "log.cleaner.backoff.ms": _r(
        "how often compacted topics are cleaned: the judged topics are not compacted, and compaction of"
        " __consumer_offsets / __transaction_state keeps each key's latest record, all their loaders read"),
    "log.retention.check.interval.ms": _r(
        "how often retention runs; whether it may delete anything is log.retention.*'s question"),
    "message.max.bytes": _r("a batch too large is refused whole with an error, never stored in part"),
    # -- producer ------------------------------------------------------------------------
    "acks": _r(FROM_THE_LOG,
               Rule(REPLICATION + AVAILABILITY + DELIVERY, READ, "when a write is acknowledged")),
    "enable.idempotence": _r(FROM_THE_LOG,
                             Rule(PRODUCER + DELIVERY, READ, "the broker deduplicates retries by sequence number")),
    "retries": _r(FROM_THE_LOG,
                  Rule(PRODUCER + DELIVERY, READ, "whether a failed send is sent again")),
    "max.in.flight.requests.per.connection": _r(
        FROM_THE_LOG,
        Rule(PRODUCER + DELIVERY, READ, "whether a later record's request may overtake an earlier one's")),
    "delivery.timeout.ms": _r("the producer's timing matters only to what it writes",
                              Rule(REPLICATION, COVERED, TIMING),
                              Rule(DELIVERY, ASSUMED, "the producer gives up on a send after it: the model has no"
                                   " clock, so it never proves delivery")),
    **{k: _r("the producer's timing matters only to what it writes", Rule(REPLICATION + DELIVERY, COVERED, TIMING))
       for k in ("linger.ms", "max.block.ms")},
    # Keys of both clients: the consumer's timing as well as the producer's.
    **{k: _r("client timing changes when records move, not which", Rule(REPLICATION + CONSUMER + DELIVERY, COVERED, TIMING))
       for k in ("request.timeout.ms", "retry.backoff.ms", "metadata.max.age.ms")},
    "batch.size": _r("batching matters only to what the producer writes",
                     Rule(PRODUCER + DELIVERY, COVERED, "each record is its own request: a batch only joins records")),
    "partitioner": _r("every guarantee is per partition: which one a key goes to does not change them"),
    "client.id": _r("a name for logs"),
    "transactional.id": _r(
        "the partition's guarantees are about acknowledged records, transactional or not",
        Rule(ISOLATION, COVERED, "the isolation model's producer is transactional; without one nothing is"
             " aborted"),
        Rule(PRODUCER, ASSUMED, "a transactional producer, whose aborted records stay in the log;"
             " the producer model's is not transactional", ("",))),
    "transaction.timeout.ms": _r("transaction timing matters only to aborted reads",
                                 Rule(ISOLATION, COVERED, "a transaction may end at any step")),
    # -- consumer ------------------------------------------------------------------------
    "group.id": _r("a name: the commit strategy (--commit-strategy) decides how a group commits"),
    "enable.auto.commit": _r("commits matter only to the consumer guarantees",
                             Rule(CONSUMER, READ, "the commit strategy: auto commit or after processing")),
    "auto.commit.interval.ms": _r("commits matter only to the consumer guarantees",
                                  Rule(CONSUMER, COVERED, "an auto commit may happen at any poll")),
    "auto.offset.reset": _r(
        "where a consumer without a position starts matters only to what the application processes",
        Rule(CONSUMER, ASSUMED, "latest skips what was written before a member joined; the model's"
             " member starts from the beginning", ("earliest", "none"))),
    "isolation.level": _r(
        "read_committed reads only below the last stable offset, at or below the high watermark the models use",
        Rule(ISOLATION, READ, "read_committed or read_uncommitted")),
    **{k: _r("the consumer's pace changes when records arrive, not which", Rule(CONSUMER, COVERED, TIMING))
       for k in ("fetch.min.bytes", "fetch.max.wait.ms", "max.partition.fetch.bytes", "max.poll.records")},
    **{k: _r(GROUPS_ONLY, Rule(CONSUMER, COVERED, "a member may be replaced and restart from the committed"
                                                  " offset at any step"))
       for k in ("session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms")},
    "partition.assignment.strategy": _r(
        "which member owns the record's partition: the model's application owns it or restarts from the commit"),
}


BROKER_KEY_NAMES = frozenset(k.name for k in BROKER_KEYS)


def all_keys() -> set[str]:
    return {k.name for k in (*BROKER_KEYS, *PRODUCER_KEYS, *CONSUMER_KEYS)}


def sort(key: str, guarantee: str, value: str | None = None) -> tuple[str, str]:
    """(READ | COVERED | IRRELEVANT | ASSUMED, why) for one key and guarantee. With a
    value: an ASSUMED key at a value the model's behaviour is counts as COVERED."""
    reach = KEYS[key]
    if guarantee in DELIVERY and key in BROKER_KEY_NAMES and not any(guarantee in r.guarantees for r in reach.rules):
        return COVERED, DELIVERY_BROKER
    for rule in reach.rules:
        if guarantee in rule.guarantees:
            if rule.kind == ASSUMED and value is not None and _norm(value) in rule.assumes:
                return COVERED, f"at {value or 'unset'}: {rule.why}"
            return rule.kind, rule.why
    return IRRELEVANT, reach.irrelevant


def unmodelled(settings: Mapping[str, str | None], guarantee: str) -> list[str]:
    """The settings (key -> effective value; None: unset) relevant to `guarantee` that no
    model reads at these values: "key=value (why)" each. Empty: the model reaches them all."""
    out = []
    for key in sorted(settings):
        kind, why = sort(key, guarantee, settings[key] if settings[key] is not None else "")
        if kind == ASSUMED:
            out.append(f"{key}={settings[key]} ({why})")
    return out


def unmodelled_protections(settings: Mapping[str, str | None], guarantee: str) -> list[str]:
    """Those of `unmodelled` that protect (Rule.protects): with them a model's violation is
    not one either."""
    out = []
    for key in sorted(settings):
        value = settings[key] if settings[key] is not None else ""
        kind, why = sort(key, guarantee, value)
        rule = next((r for r in KEYS[key].rules if guarantee in r.guarantees), None)
        if kind == ASSUMED and rule is not None and rule.protects:
            out.append(f"{key}={settings[key]} ({why})")
    return out


LABEL = {READ: "modelled", COVERED: "modelled", IRRELEVANT: "irrelevant", ASSUMED: "NOT MODELLED at this value"}


def explain(given: Mapping[str, str], guarantees) -> dict[str, dict]:
    """For each key the user set: its value and, per guarantee, [label, why]."""
    return {k: {"value": v, "reach": {g: [LABEL[kind], why] for g in guarantees
                                      for kind, why in [sort(k, g, v)]}} for k, v in sorted(given.items())}


def explain_lines(given: Mapping[str, str], guarantees) -> list[str]:
    """One line per key the user set: which guarantees' models read it, which it cannot
    change and which it leaves UNKNOWN - the same sorting verify's verdicts use."""
    lines = []
    for key, value in sorted(given.items()):
        groups: dict[tuple[str, str], list[str]] = {}
        for g in guarantees:
            kind, why = sort(key, g, value)
            groups.setdefault((LABEL[kind], why), []).append(g)
        parts = [f"{label} {'to' if label == 'irrelevant' else 'for'} {', '.join(gs)} ({why})"
                 for (label, why), gs in groups.items()]
        lines.append(f"{key}={value}: " + "; ".join(parts))
    return lines


def _norm(value: str) -> str:
    return value.strip().lower()


assert set(GUARANTEES) >= {g for r in KEYS.values() for rule in r.rules for g in rule.guarantees}
