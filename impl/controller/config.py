"""The controller's own settings: the few server.properties keys it reads (Kafka's
KRaft controllers share the file with the brokers but read only their part)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ControllerConfig:
    session_timeout_ms: int = 9000  # broker.session.timeout.ms: fence a silent broker
    default_replication_factor: int = 1
    num_partitions: int = 1
    unclean_leader_election: bool = False
    min_insync_replicas: int = 1  # (the ELR is kept below a topic's min.insync.replicas)
    eligible_leader_replicas: bool = True
    transaction_state_min_isr: int = 2  # (__transaction_state's min.insync.replicas)

    @classmethod
    def of(cls, server) -> ControllerConfig:
        """Its part of a parsed server.properties (a BrokerConfig: the same field names)."""
        return cls(**{f.name: getattr(server, f.name) for f in fields(cls)})
