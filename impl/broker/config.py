"""Broker settings: Kafka's keys and defaults (Kafka 3.x), plus the legacy switches that
bring back historical data-loss behaviours (all off by default)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from kafkaproof.impl.config import ConfigError, Key, at_least, one_of, resolve
from kafkaproof.impl.storage.config import LOG_KEYS, LogConfig

# Kafka 4's KRaft authorizer, and the ZooKeeper-era one: both read the same ACL rules.
AUTHORIZERS = ("org.apache.kafka.metadata.authorizer.StandardAuthorizer", "kafka.security.authorizer.AclAuthorizer")
BROKER_KEYS = LOG_KEYS + (
    Key("default.replication.factor", "int", 1, "Replication factor of new topics.", at_least(1)),
    Key("num.partitions", "int", 1, "Partitions of new topics.", at_least(1)),
    Key("min.insync.replicas", "int", 1, "ISR size below which acks=all produce fails.", at_least(1)),
    Key("unclean.leader.election.enable", "bool", False, "Elect an out-of-sync replica when no ISR member lives."),
    # Kafka 4.1 turns KIP-966 on for new clusters (eligible.leader.replicas.version=1); false
    # gives Kafka 3.x's elections.
    Key("eligible.leader.replicas.enable", "bool", True, "KIP-966: strict min ISR, eligible leader replicas and"
        " unclean-shutdown detection (Kafka 4.1's default for new clusters; false: 3.x's elections)."),
    # The seed notes say 10 s, the default before Kafka 2.5 (KIP-537 raised it to 30 s).
    Key("replica.lag.time.max.ms", "long", 30_000, "A follower this far behind leaves the ISR.", at_least(1)),
    Key("replica.fetch.wait.max.ms", "int", 500, "How long a follower fetch waits for data.", at_least(0)),
    Key("replica.fetch.max.bytes", "int", 1 << 20, "Bytes per follower fetch.", at_least(1)),
    Key("replica.fetch.backoff.ms", "int", 1000, "Pause after a failed follower fetch.", at_least(0)),
    Key("replica.socket.timeout.ms", "int", 30_000, "A follower request unanswered this long failed.", at_least(1)),
    Key("log.retention.check.interval.ms", "long", 300_000, "How often logs are checked for segments to delete"
        " (retention).", at_least(1)),
    Key("log.cleaner.backoff.ms", "long", 15_000, "How often compacted logs are checked for a cleaner pass.",
        at_least(1)),
    Key("replica.high.watermark.checkpoint.interval.ms", "long", 5000, "HW checkpoint period.", at_least(1)),
    Key("broker.heartbeat.interval.ms", "int", 2000, "Broker to controller heartbeats.", at_least(1)),
    Key("broker.session.timeout.ms", "int", 9000, "A broker silent this long is fenced.", at_least(1)),
    Key("offsets.topic.num.partitions", "int", 50, "Partitions of __consumer_offsets.", at_least(1)),
    Key("offsets.topic.replication.factor", "int", 3, "Replicas of __consumer_offsets.", at_least(1)),
    Key("offsets.commit.timeout.ms", "int", 5000, "An offset commit waits this long for replication.",
        at_least(1)),
    Key("group.initial.rebalance.delay.ms", "int", 3000, "Wait for more members before a new group's first"
        " rebalance.", at_least(0)),
    Key("group.min.session.timeout.ms", "int", 6000, "Smallest session.timeout.ms a member may ask for.",
        at_least(0)),
    Key("group.max.session.timeout.ms", "int", 1_800_000, "Largest session.timeout.ms a member may ask for.",
        at_least(0)),
    Key("transaction.state.log.num.partitions", "int", 50, "Partitions of __transaction_state.", at_least(1)),
    Key("transaction.state.log.replication.factor", "int", 3, "Replicas of __transaction_state.", at_least(1)),
    Key("transaction.state.log.min.isr", "int", 2, "min.insync.replicas of __transaction_state, set when it is"
        " created (at most its replication factor).", at_least(1)),
    Key("transactional.id.expiration.ms", "int", 604_800_000, "A transactional id with no transaction open and"
        " no change for this long is forgotten, its producer id with it.", at_least(1)),
    Key("transaction.remove.expired.transaction.cleanup.interval.ms", "int", 3_600_000,
        "How often the coordinator forgets expired transactional ids.", at_least(1)),
    Key("transaction.max.timeout.ms", "int", 900_000, "Largest transaction.timeout.ms a producer may ask for.",
        at_least(1)),
    Key("transaction.abort.timed.out.transaction.cleanup.interval.ms", "int", 10_000,
        "How often the coordinator aborts transactions older than their timeout.", at_least(1)),
    # The real runtime's Reactor (impl/net); the simulator has no sockets.
    Key("num.network.threads", "int", 3, "Processor threads, each with its own selector.", at_least(1)),
    Key("num.io.threads", "int", 8, "Request handler threads.", at_least(1)),
    Key("queued.max.requests", "int", 500, "Requests read but not yet handled before processors stop reading.",
        at_least(1)),
    Key("max.incremental.fetch.session.cache.slots", "int", 1000, "Incremental fetch sessions (KIP-227) kept;"
        " 0: every fetch is a full one.", at_least(0)),
    Key("socket.request.max.bytes", "int", 104_857_600, "Largest request frame; a larger one closes the"
        " connection.", at_least(1)),
    # Security (issue 22). serve takes host and port from --host/--port: of `listeners` it
    # reads the listener's name, whose protocol the map gives.
    Key("listeners", "string", "PLAINTEXT://:9092", "Client listeners, NAME://HOST:PORT,... (serve gives the"
        " first --host/--port; the others their own port on --host, or any free one with --port 0)."),
    Key("listener.security.protocol.map", "string",
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        "Listener name -> security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)."),
    Key("security.inter.broker.protocol", "string", "PLAINTEXT", "How broker processes talk to each other:"
        " PLAINTEXT, or SSL - mutual TLS with the ssl.* keystore and truststore, so only a holder of a"
        " certificate the truststore's CAs signed can reach a peer port.", one_of("PLAINTEXT", "SSL", "SASL_PLAINTEXT",
                                                                                    "SASL_SSL")),
    Key("inter.broker.listener.name", "string", "", "A listener name whose protocol (in the map) the links"
        " between broker processes use instead of security.inter.broker.protocol."),
    Key("sasl.enabled.mechanisms", "list", ["GSSAPI"], "SASL mechanisms a SASL listener offers (PLAIN,"
        " SCRAM-SHA-256, SCRAM-SHA-512 served; Kafka's default GSSAPI is not)."),
    # Metadata in ZooKeeper (Kafka <= 3.x; serve --metadata zookeeper://HOST:PORT sets zookeeper.connect).
    Key("zookeeper.connect", "string", "", "HOST:PORT[,HOST:PORT][/chroot]: the metadata lives in ZooKeeper"
        " and every broker process is a controller candidate (one broker per process)."),
    Key("zookeeper.session.timeout.ms", "int", 18_000, "A broker's ZooKeeper session: when the controller's"
        " expires (its process died), another broker becomes controller.", at_least(1)),
    Key("zookeeper.connection.timeout.ms", "int", None, "How long a broker waits to reach ZooKeeper at start"
        " before it gives up with an error (Kafka's default: the session timeout).", at_least(1)),
    # Authorization (KIP-11; Kafka 4's StandardAuthorizer keeps the ACLs in the metadata, as here).
    Key("authorizer.class.name", "string", "", "An authorizer: every request is checked against the ACLs"
        " (CreateAcls, DescribeAcls, DeleteAcls). Empty: none.", one_of("", *AUTHORIZERS)),
    Key("super.users", "string", "", "Principals allowed everything, separated by ';' (User:admin;User:ops)."),
    Key("allow.everyone.if.no.acl.found", "bool", False, "With an authorizer, a resource no ACL names is"
        " open to all (false: only super users)."),
    # TLS (SSL and SASL_SSL listeners): PEM files only (KIP-651's PEM keystores); Python's ssl
    # module reads neither JKS nor PKCS12.
    Key("ssl.keystore.type", "string", "JKS", "PEM: the keystore is a PEM file (JKS, PKCS12 not served).",
        one_of("JKS", "PKCS12", "PEM")),
    Key("ssl.keystore.location", "string", "", "The broker's private key and certificate chain (PEM)."),
    Key("ssl.key.password", "string", "", "The private key's password, if it is encrypted."),
    Key("ssl.truststore.type", "string", "JKS", "PEM: the truststore is a PEM file of CA certificates.",
        one_of("JKS", "PKCS12", "PEM")),
    Key("ssl.truststore.location", "string", "", "CA certificates client certificates are checked against."),
    Key("ssl.client.auth", "string", "none", "Client certificates: none, requested or required (then the"
        " principal is User:<the certificate's distinguished name>).", one_of("none", "requested", "required")),
    Key("legacy.truncate.to.high.watermark", "bool", False,
        "Pre-KIP-101: a new follower truncates to its high watermark (nor KIP-279, KIP-320)."),
    Key("legacy.kip101.without.kip279", "bool", False,
        "KIP-101 epochs but not KIP-279's fix for fast leader changes (nor KIP-320's fencing)."),
    Key("legacy.no.fetch.epoch.fencing", "bool", False,
        "Pre-KIP-320: fetches do not carry or check the leader epoch."),
    Key("legacy.transactions.without.kip890", "bool", False,
        "Pre-KIP-890: no partition verification, no epoch bump per transaction."),
)


@dataclass(frozen=True)
class BrokerConfig:
    log: LogConfig = field(default_factory=LogConfig)
    default_replication_factor: int = 1
    num_partitions: int = 1
    min_insync_replicas: int = 1
    unclean_leader_election: bool = False
    eligible_leader_replicas: bool = True
    replica_lag_time_max_ms: int = 30_000
    replica_fetch_wait_max_ms: int = 500
    replica_fetch_max_bytes: int = 1 << 20
    replica_fetch_backoff_ms: int = 1000
    replica_socket_timeout_ms: int = 30_000
    hw_checkpoint_interval_ms: int = 5000
    retention_check_interval_ms: int = 300_000
    cleaner_backoff_ms: int = 15_000
    heartbeat_interval_ms: int = 2000
    session_timeout_ms: int = 9000
    offsets_topic_partitions: int = 50
    offsets_topic_replication_factor: int = 3
    offsets_commit_timeout_ms: int = 5000
    group_initial_rebalance_delay_ms: int = 3000
    group_min_session_timeout_ms: int = 6000
    group_max_session_timeout_ms: int = 1_800_000
    transaction_state_partitions: int = 50
    transaction_state_replication_factor: int = 3
    transaction_state_min_isr: int = 2
    transaction_max_timeout_ms: int = 900_000
    transaction_cleanup_interval_ms: int = 10_000
    transactional_id_expiration_ms: int = 604_800_000
    transactional_id_cleanup_interval_ms: int = 3_600_000
    num_network_threads: int = 3
    num_io_threads: int = 8
    queued_max_requests: int = 500
    socket_request_max_bytes: int = 104_857_600
    fetch_session_cache_slots: int = 1000
    listeners: tuple[Listener, ...] = ()  # `listeners` and the protocol map; the first on serve's --port
    sasl_mechanisms: tuple[str, ...] = ()  # offered on a SASL listener
    inter_broker_protocol: str = "PLAINTEXT"  # of the links between broker processes (impl/net/peers.py)
    zookeeper_connect: str = ""
    zookeeper_session_timeout_ms: int = 18_000
    zookeeper_connection_timeout_ms: int = 18_000
    authorizer: bool = False
    super_users: tuple[str, ...] = ()
    allow_everyone_if_no_acl_found: bool = False
    ssl: tuple = ()  # the ssl.* keys as (name, value) pairs, read by impl/net/tls.py
    legacy_truncate_to_hw: bool = False
    legacy_kip101_without_kip279: bool = False
    legacy_no_fetch_epoch_fencing: bool = False
    legacy_transactions_without_kip890: bool = False

    @property
    def security_protocol(self) -> str:
        """The first listener's (the one serve puts on --port)."""
        return self.listeners[0].protocol if self.listeners else "PLAINTEXT"

    @classmethod
    def from_properties(cls, raw: Mapping[str, str | tuple[str, str]]) -> BrokerConfig:
        v = resolve(BROKER_KEYS, raw, "broker")
        log_raw = {k: e for k, e in raw.items() if any(k == key.name for key in LOG_KEYS)}
        return cls(
            log=LogConfig.from_properties(log_raw),
            default_replication_factor=v["default.replication.factor"],
            num_partitions=v["num.partitions"],
            min_insync_replicas=v["min.insync.replicas"],
            unclean_leader_election=v["unclean.leader.election.enable"],
            eligible_leader_replicas=v["eligible.leader.replicas.enable"],
            replica_lag_time_max_ms=v["replica.lag.time.max.ms"],
            replica_fetch_wait_max_ms=v["replica.fetch.wait.max.ms"],
            replica_fetch_max_bytes=v["replica.fetch.max.bytes"],
            replica_fetch_backoff_ms=v["replica.fetch.backoff.ms"],
            replica_socket_timeout_ms=v["replica.socket.timeout.ms"],
            hw_checkpoint_interval_ms=v["replica.high.watermark.checkpoint.interval.ms"],
            retention_check_interval_ms=v["log.retention.check.interval.ms"],
            cleaner_backoff_ms=v["log.cleaner.backoff.ms"],
            heartbeat_interval_ms=v["broker.heartbeat.interval.ms"],
            session_timeout_ms=v["broker.session.timeout.ms"],
            offsets_topic_partitions=v["offsets.topic.num.partitions"],
            offsets_topic_replication_factor=v["offsets.topic.replication.factor"],
            offsets_commit_timeout_ms=v["offsets.commit.timeout.ms"],
            group_initial_rebalance_delay_ms=v["group.initial.rebalance.delay.ms"],
            group_min_session_timeout_ms=v["group.min.session.timeout.ms"],
            group_max_session_timeout_ms=v["group.max.session.timeout.ms"],
            transaction_state_partitions=v["transaction.state.log.num.partitions"],
            transaction_state_replication_factor=v["transaction.state.log.replication.factor"],
            transaction_state_min_isr=v["transaction.state.log.min.isr"],
            transaction_max_timeout_ms=v["transaction.max.timeout.ms"],
            transaction_cleanup_interval_ms=v["transaction.abort.timed.out.transaction.cleanup.interval.ms"],
            transactional_id_expiration_ms=v["transactional.id.expiration.ms"],
            transactional_id_cleanup_interval_ms=v["transaction.remove.expired.transaction.cleanup.interval.ms"],
            num_network_threads=v["num.network.threads"],
            num_io_threads=v["num.io.threads"],
            queued_max_requests=v["queued.max.requests"],
            socket_request_max_bytes=v["socket.request.max.bytes"],
            fetch_session_cache_slots=v["max.incremental.fetch.session.cache.slots"],
            listeners=_listeners(v["listeners"], v["listener.security.protocol.map"]),
            sasl_mechanisms=tuple(v["sasl.enabled.mechanisms"]),
            inter_broker_protocol=_inter_broker_protocol(v),
            zookeeper_connect=v["zookeeper.connect"],
            zookeeper_session_timeout_ms=v["zookeeper.session.timeout.ms"],
            zookeeper_connection_timeout_ms=v["zookeeper.connection.timeout.ms"] or v["zookeeper.session.timeout.ms"],
            authorizer=bool(v["authorizer.class.name"]),
            super_users=tuple(u.strip() for u in v["super.users"].split(";") if u.strip()),
            allow_everyone_if_no_acl_found=v["allow.everyone.if.no.acl.found"],
            ssl=tuple((k, val) for k, val in v.items() if k.startswith("ssl.")),
            # Cumulative, as Kafka's history is (KIP-101 came in 0.11, KIP-279 in 2.0, KIP-320
            # in 2.1) and as the explorer's variants are: a broker without a fix has none
            # of the later ones either. (Alone, legacy.kip101.without.kip279 kept KIP-320's
            # fencing, a broker that never existed, and the explorer's kip101 variant -
            # verify's back end for it - has no fencing: verify and the runs disagreed.)
            legacy_truncate_to_hw=v["legacy.truncate.to.high.watermark"],
            legacy_kip101_without_kip279=v["legacy.kip101.without.kip279"] or v["legacy.truncate.to.high.watermark"],
            legacy_no_fetch_epoch_fencing=(v["legacy.no.fetch.epoch.fencing"] or v["legacy.kip101.without.kip279"]
                                           or v["legacy.truncate.to.high.watermark"]),
            legacy_transactions_without_kip890=v["legacy.transactions.without.kip890"],
        )


SERVED_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _inter_broker_protocol(v: dict) -> str:
    """security.inter.broker.protocol, or the protocol of inter.broker.listener.name (Kafka
    refuses both set). Peers authenticate with TLS client certificates; SASL between broker
    processes is refused by name."""
    name, protocol = v["inter.broker.listener.name"].strip().upper(), v["security.inter.broker.protocol"]
    if name:
        if protocol != "PLAINTEXT":
            raise ConfigError("inter.broker.listener.name and security.inter.broker.protocol are both set (Kafka"
                              " allows one)")
        protocol = _protocol_map(v["listener.security.protocol.map"]).get(name)
        if protocol is None:
            raise ConfigError(f"inter.broker.listener.name: {name} is not in listener.security.protocol.map")
    if protocol.startswith("SASL_"):
        raise ConfigError(f"links between brokers over {protocol} are not served: peers authenticate with TLS"
                          " client certificates (SSL)")
    return protocol


def _protocol_map(protocol_map: str) -> dict[str, str]:
    mapping = {}
    for pair in protocol_map.split(","):
        key, sep, protocol = pair.strip().partition(":")
        if not sep:
            raise ConfigError(f"listener.security.protocol.map: {pair!r} is not NAME:PROTOCOL")
        mapping[key.strip().upper()] = protocol.strip().upper()
    return mapping


class Listener(NamedTuple):
    name: str  # CLIENT, INTERNAL...
    port: int  # from NAME://HOST:PORT (serve gives the first listener --port instead)
    protocol: str  # PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL: the name looked up in the map


def _listeners(listeners: str, protocol_map: str) -> tuple[Listener, ...]:
    """Kafka's `listeners`, each name looked up in listener.security.protocol.map, e.g.
    CLIENT://:9092,INTERNAL://:9094 with CLIENT:SASL_SSL,INTERNAL:PLAINTEXT."""
    out: list[Listener] = []
    mapping = _protocol_map(protocol_map)
    for entry in (e.strip() for e in listeners.split(",") if e.strip()):
        name, sep, address = entry.partition("://")
        port = address.rpartition(":")[2]
        if not sep or not name or not port.isdigit():
            raise ConfigError(f"listeners: {entry!r} is not NAME://HOST:PORT")
        name = name.upper()
        protocol = mapping.get(name)
        if protocol is None:
            raise ConfigError(f"listeners: {name} is not in listener.security.protocol.map ({protocol_map})")
        if protocol not in SERVED_PROTOCOLS:
            raise ConfigError(f"listeners: {name} is {protocol}, not served (served: {', '.join(SERVED_PROTOCOLS)})")
        if any(listener.name == name for listener in out):
            raise ConfigError(f"listeners: {name} twice")
        out.append(Listener(name, int(port), protocol))
    if not out:
        raise ConfigError("listeners: no listener")
    return tuple(out)


def check_topic_fits(replication_factor: int, min_insync_replicas: int, brokers: int | None = None) -> None:
    """A topic the simulator or the verifier is asked to judge must be one an acks=all
    write can reach. (Kafka itself creates such a topic and fails every acks=all produce
    with NOT_ENOUGH_REPLICAS; `kafkaproof serve` does the same: a judgement of it would
    only say that nothing was ever acknowledged.)"""
    if brokers is not None and replication_factor > brokers:
        raise ConfigError(f"replication factor {replication_factor} is larger than the {brokers} brokers"
                          " (default.replication.factor or the topic's replication factor)")
    if min_insync_replicas > replication_factor:
        raise ConfigError(f"min.insync.replicas={min_insync_replicas} is larger than the replication factor"
                          f" {replication_factor}: acks=all writes could never succeed")


def judged_replication_factor(broker_props: dict) -> int:
    """The replication factor of the topics check, verify and the campaigns judge: 3
    unless default.replication.factor says otherwise (Kafka's own default, 1, is what
    BrokerConfig keeps; no one runs it in production)."""
    return int(broker_props.get("default.replication.factor", "3"))
