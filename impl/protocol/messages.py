"""Requests and responses exchanged by brokers, controllers and clients.

Kafka's APIs, reduced to the fields the protocol logic reads; one topic-partition
per request (Kafka batches many, which changes throughput, not semantics). The
wire codec for real clients (issue: real runtime) maps Kafka's schemas onto these.
Control-plane messages (LeaderAndIsr, StopReplica, UpdateMetadata, heartbeats,
AlterPartition) travel on their own channel, as with Kafka's control-plane listener.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from kafkaproof.impl.protocol.errors import ErrorCode

CONSUMER_REPLICA_ID = -1
NO_LEADER = -1
EARLIEST_TIMESTAMP = -2
LATEST_TIMESTAMP = -1
MAX_TIMESTAMP = -3  # ListOffsets v7 (KIP-734): the record with the largest timestamp
EARLIEST_LOCAL_TIMESTAMP = -4  # v8 (KIP-405): without tiered storage, the log start
LATEST_TIERED_TIMESTAMP = -5  # v9 (KIP-1005): without tiered storage, no offset (-1)


class TopicPartition(NamedTuple):
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


class AclBinding(NamedTuple):
    """One ACL (KIP-11, KIP-290), the authorizer's unit (impl/broker/acl.py). As a filter
    (DeleteAcls, DescribeAcls) None matches any string and "ANY" any enum value, and the
    pattern type may be MATCH."""

    principal: str | None  # "User:alice", or "User:*"
    host: str | None  # an address, or "*"
    operation: str
    permission: str  # ALLOW | DENY
    resource_type: str
    pattern_type: str  # LITERAL | PREFIXED
    resource_name: str | None


# --- data plane ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProduceRequest:
    correlation_id: int
    tp: TopicPartition
    acks: int  # 0, 1 or -1 (all)
    timeout_ms: int
    records: bytes
    transactional_id: str | None = None  # lets the leader verify the partition is in the transaction (KIP-890)
    # KIP-890 part 2 (transaction version 2, Produce v12): the client sent no AddPartitionsToTxn;
    # the leader adds the partition to the transaction itself instead of only verifying it.
    add_partition: bool = False


@dataclass(frozen=True)
class ProduceResponse:
    correlation_id: int
    tp: TopicPartition
    error: ErrorCode
    base_offset: int = -1
    log_start_offset: int = -1
    message: str = ""


@dataclass(frozen=True)
class FetchRequest:
    correlation_id: int
    tp: TopicPartition
    replica_id: int  # a broker id for followers, CONSUMER_REPLICA_ID for consumers
    fetch_offset: int
    current_leader_epoch: int  # KIP-320: -1 when unknown
    max_bytes: int
    max_wait_ms: int
    min_bytes: int
    replica_epoch: int = -1  # the follower's broker epoch, to spot restarted followers
    isolation_level: int = 0  # READ_UNCOMMITTED: up to the HW; READ_COMMITTED: up to the LSO
    zero_copy: bool = False  # the real runtime: answer with where the records lie (storage.disk.FileRegion)


READ_UNCOMMITTED, READ_COMMITTED = 0, 1


@dataclass(frozen=True)
class FetchResponse:
    correlation_id: int
    tp: TopicPartition
    error: ErrorCode
    high_watermark: int = -1
    log_start_offset: int = -1
    records: bytes = b""
    leader_epoch: int = -1
    last_stable_offset: int = -1
    aborted: tuple[tuple[int, int], ...] = ()  # read_committed: (producer id, first offset) of aborted txns


@dataclass(frozen=True)
class OffsetsForLeaderEpochRequest:
    correlation_id: int
    tp: TopicPartition
    replica_id: int
    current_leader_epoch: int
    leader_epoch: int  # "where does this epoch end in your log?"


@dataclass(frozen=True)
class OffsetsForLeaderEpochResponse:
    correlation_id: int
    tp: TopicPartition
    error: ErrorCode
    leader_epoch: int = -1
    end_offset: int = -1


@dataclass(frozen=True)
class ListOffsetsRequest:
    correlation_id: int
    tp: TopicPartition
    timestamp: int  # EARLIEST_TIMESTAMP, LATEST_TIMESTAMP, MAX_TIMESTAMP or a time (ms): the first record at or after it
    current_leader_epoch: int = -1
    isolation_level: int = 0  # LATEST is the LSO for READ_COMMITTED


@dataclass(frozen=True)
class ListOffsetsResponse:
    correlation_id: int
    tp: TopicPartition
    error: ErrorCode
    offset: int = -1
    leader_epoch: int = -1
    timestamp: int = -1  # a lookup by time: the found record's timestamp


HIGH_WATERMARK = -1  # DeleteRecords' "up to the high watermark"


@dataclass(frozen=True)
class DeleteRecordsRequest:
    correlation_id: int
    tp: TopicPartition
    offset: int  # the new log start offset; HIGH_WATERMARK: everything committed


@dataclass(frozen=True)
class DeleteRecordsResponse:
    correlation_id: int
    tp: TopicPartition
    error: ErrorCode
    low_watermark: int = -1  # the log start offset after the deletion


@dataclass(frozen=True)
class DescribeLogDirsRequest:
    correlation_id: int


@dataclass(frozen=True)
class DescribeLogDirsResponse:
    correlation_id: int
    log_dir: str
    sizes: tuple[tuple[TopicPartition, int], ...]  # bytes of each partition's log on this broker


@dataclass(frozen=True)
class DescribeProducersRequest:
    correlation_id: int
    tp: TopicPartition


@dataclass(frozen=True)
class DescribeProducersResponse:
    correlation_id: int
    tp: TopicPartition
    error: ErrorCode
    # (producer id, epoch, last sequence, coordinator epoch, open transaction's first offset or -1)
    producers: tuple[tuple[int, int, int, int, int], ...] = ()


@dataclass(frozen=True)
class PartitionMetadata:
    tp: TopicPartition
    leader: int
    leader_epoch: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    elr: tuple[int, ...] = ()  # KIP-966 (DescribeTopicPartitions' EligibleLeaderReplicas)
    last_known_elr: tuple[int, ...] = ()  # ... and its LastKnownElr


@dataclass(frozen=True)
class MetadataRequest:
    correlation_id: int
    topics: tuple[str, ...] | None = None  # None: every topic


@dataclass(frozen=True)
class MetadataResponse:
    correlation_id: int
    brokers: tuple[int, ...]
    partitions: tuple[PartitionMetadata, ...]
    unknown_topics: tuple[str, ...] = ()
    topic_configs: TopicConfigs = ()  # the overrides of the topics named in the request


@dataclass(frozen=True)
class InitProducerIdRequest:
    correlation_id: int
    transactional_id: str | None = None  # with one, the transaction coordinator answers
    transaction_timeout_ms: int = -1


@dataclass(frozen=True)
class InitProducerIdResponse:
    correlation_id: int
    error: ErrorCode
    producer_id: int = -1
    producer_epoch: int = -1


# --- consumer groups (the group coordinator lives in the broker) -----------------------------


@dataclass(frozen=True)
class FindCoordinatorRequest:
    correlation_id: int
    key: str  # the group.id, or the transactional.id
    key_type: int = 0  # GROUP or TRANSACTION


GROUP, TRANSACTION = 0, 1


@dataclass(frozen=True)
class FindCoordinatorResponse:
    correlation_id: int
    error: ErrorCode
    node_id: int = -1


@dataclass(frozen=True)
class JoinGroupRequest:
    correlation_id: int
    group_id: str
    member_id: str  # "" on a first join: the coordinator names the member
    session_timeout_ms: int
    rebalance_timeout_ms: int  # the member's max.poll.interval.ms
    protocols: tuple[str, ...]  # assignors the member supports, preferred first
    subscription: tuple[str, ...]  # topics
    owned: tuple[TopicPartition, ...] = ()  # what it holds now (cooperative rebalancing)
    group_instance_id: str | None = None  # static membership (KIP-345)
    # A wire client's (protocol, metadata bytes): opaque to the coordinator, as in Kafka,
    # and handed to the leader as they came (a custom assignor's userData, its own version).
    metadata: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class JoinGroupResponse:
    correlation_id: int
    error: ErrorCode
    generation: int = -1
    protocol: str = ""
    leader: str = ""
    member_id: str = ""
    # for the leader only: every member's (member id, subscribed topics, owned partitions)
    members: tuple[tuple[str, tuple[str, ...], tuple[TopicPartition, ...]], ...] = ()
    member_metadata: tuple[tuple[str, bytes], ...] = ()  # (member id, its bytes for the chosen protocol)


@dataclass(frozen=True)
class SyncGroupRequest:
    correlation_id: int
    group_id: str
    generation: int
    member_id: str
    assignments: tuple[tuple[str, tuple[TopicPartition, ...]], ...] = ()  # from the leader only
    raw_assignments: tuple[tuple[str, bytes], ...] = ()  # a wire leader's bytes per member, passed through


@dataclass(frozen=True)
class SyncGroupResponse:
    correlation_id: int
    error: ErrorCode
    assignment: tuple[TopicPartition, ...] = ()
    raw_assignment: bytes = b""  # the wire leader's bytes for this member, as it sent them


@dataclass(frozen=True)
class HeartbeatRequest:
    correlation_id: int
    group_id: str
    generation: int
    member_id: str


@dataclass(frozen=True)
class HeartbeatResponse:
    correlation_id: int
    error: ErrorCode


@dataclass(frozen=True)
class LeaveGroupRequest:
    correlation_id: int
    group_id: str
    member_id: str


@dataclass(frozen=True)
class LeaveGroupResponse:
    correlation_id: int
    error: ErrorCode


@dataclass(frozen=True)
class OffsetCommitRequest:
    correlation_id: int
    group_id: str
    generation: int  # -1 with member "" for a consumer outside any group generation
    member_id: str
    offsets: tuple[tuple[TopicPartition, int], ...]  # the next offset to read, per partition
    # A wire client's (partition, leader epoch, metadata string) where it gave them: kept
    # and answered back by OffsetFetch, as Kafka's OffsetAndMetadata.
    details: tuple[tuple[TopicPartition, int, str], ...] = ()


@dataclass(frozen=True)
class OffsetCommitResponse:
    correlation_id: int
    error: ErrorCode


@dataclass(frozen=True)
class OffsetFetchRequest:
    correlation_id: int
    group_id: str
    tps: tuple[TopicPartition, ...]
    require_stable: bool = False  # KIP-447: read_committed consumers wait for pending transactional commits


@dataclass(frozen=True)
class OffsetFetchResponse:
    correlation_id: int
    error: ErrorCode
    offsets: tuple[tuple[TopicPartition, int], ...] = ()  # -1: nothing committed
    details: tuple[tuple[TopicPartition, int, str], ...] = ()  # (leader epoch, metadata) committed with them


@dataclass(frozen=True)
class DescribeGroupRequest:
    correlation_id: int
    group_id: str


@dataclass(frozen=True)
class GroupMemberSummary:
    member_id: str
    client: str
    metadata: bytes  # a wire member's bytes for the chosen protocol (b"": a simulated one)
    assignment: bytes  # the wire leader's bytes for it
    subscription: tuple[str, ...] = ()
    assigned: tuple[TopicPartition, ...] = ()


@dataclass(frozen=True)
class DescribeGroupResponse:
    correlation_id: int
    error: ErrorCode
    state: str = "Dead"  # Kafka's name for a group it does not have
    protocol_type: str = ""
    protocol: str = ""  # "" unless Stable, as Kafka's GroupMetadata.summary
    members: tuple[GroupMemberSummary, ...] = ()


@dataclass(frozen=True)
class DeleteGroupRequest:
    correlation_id: int
    group_id: str


@dataclass(frozen=True)
class DeleteGroupResponse:
    correlation_id: int
    error: ErrorCode


@dataclass(frozen=True)
class OffsetDeleteRequest:
    correlation_id: int
    group_id: str
    tps: tuple[TopicPartition, ...]


@dataclass(frozen=True)
class OffsetDeleteResponse:
    correlation_id: int
    error: ErrorCode  # the group's
    errors: tuple[tuple[TopicPartition, ErrorCode], ...] = ()  # each partition's


@dataclass(frozen=True)
class ListGroupsRequest:
    correlation_id: int
    states: tuple[str, ...] = ()  # KIP-518: only groups in these states (none: all)


@dataclass(frozen=True)
class ListGroupsResponse:
    correlation_id: int
    error: ErrorCode
    groups: tuple[tuple[str, str, str], ...] = ()  # (group id, protocol type, state) of those it coordinates


# --- transactions (the transaction coordinator lives in the broker) -------------------------


@dataclass(frozen=True)
class AddPartitionsToTxnRequest:
    correlation_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    tps: tuple[TopicPartition, ...]
    verify_only: bool = False  # KIP-890: a leader asking "is this partition in the transaction?"


@dataclass(frozen=True)
class AddPartitionsToTxnResponse:
    correlation_id: int
    error: ErrorCode


@dataclass(frozen=True)
class AddOffsetsToTxnRequest:
    correlation_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    group_id: str


@dataclass(frozen=True)
class AddOffsetsToTxnResponse:
    correlation_id: int
    error: ErrorCode


@dataclass(frozen=True)
class EndTxnRequest:
    correlation_id: int
    transactional_id: str
    producer_id: int
    producer_epoch: int
    committed: bool
    # KIP-890 part 2: a client on EndTxn v5+ takes the bumped epoch from the response;
    # an older one keeps its epoch, so its transaction must end without a bump.
    bump_epoch: bool = True


@dataclass(frozen=True)
class EndTxnResponse:
    correlation_id: int
    error: ErrorCode
    producer_id: int = -1  # KIP-890: the epoch the next transaction uses (bumped per transaction)
    producer_epoch: int = -1


@dataclass(frozen=True)
class WriteTxnMarkersRequest:
    correlation_id: int
    tp: TopicPartition
    producer_id: int
    producer_epoch: int
    coordinator_epoch: int
    committed: bool
    bumped: bool = True  # KIP-890 transaction version 2: the marker's epoch is above the data's


@dataclass(frozen=True)
class WriteTxnMarkersResponse:
    correlation_id: int
    tp: TopicPartition
    error: ErrorCode


@dataclass(frozen=True)
class TxnOffsetCommitRequest:
    correlation_id: int
    transactional_id: str
    group_id: str
    producer_id: int
    producer_epoch: int
    generation: int  # KIP-447: the consumer's group generation fences zombies
    member_id: str
    offsets: tuple[tuple[TopicPartition, int], ...]
    details: tuple[tuple[TopicPartition, int, str], ...] = ()  # (leader epoch, metadata), as OffsetCommit's


@dataclass(frozen=True)
class TxnOffsetCommitResponse:
    correlation_id: int
    error: ErrorCode


@dataclass(frozen=True)
class ListTransactionsRequest:
    correlation_id: int
    states: tuple[str, ...] = ()  # empty: every state
    producer_ids: tuple[int, ...] = ()


@dataclass(frozen=True)
class ListTransactionsResponse:
    correlation_id: int
    transactions: tuple[tuple[str, int, str], ...]  # (transactional id, producer id, state)


@dataclass(frozen=True)
class DescribeTransactionRequest:
    correlation_id: int
    transactional_id: str


@dataclass(frozen=True)
class DescribeTransactionResponse:
    correlation_id: int
    error: ErrorCode
    state: str = ""
    producer_id: int = -1
    producer_epoch: int = -1
    timeout_ms: int = 0
    started: int = -1
    partitions: tuple[TopicPartition, ...] = ()


# --- control plane ------------------------------------------------------------------------


Configs = tuple[tuple[str, str], ...]  # a topic's config overrides, by Kafka's topic-level names
TopicConfigs = tuple[tuple[str, Configs], ...]  # (topic, its overrides), topics that have any


@dataclass(frozen=True)
class PartitionState:
    """The controller's record of one partition. `partition_epoch` versions every change
    (leader or ISR) so stale AlterPartition requests are fenced (KIP-497)."""

    tp: TopicPartition
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    replicas: tuple[int, ...]
    partition_epoch: int
    # A reassignment under way (KIP-455): `replicas` is then the union of the old and the
    # target replicas; these join, those leave once every adding replica is in the ISR.
    adding: tuple[int, ...] = ()
    removing: tuple[int, ...] = ()
    # KIP-966: replicas out of the ISR that still hold everything below the HW (kept only
    # while the ISR is below min.insync.replicas); leaders come from here when the ISR is empty.
    elr: tuple[int, ...] = ()
    # KIP-966's LastKnownElr as Kafka 4 keeps it (balanced recovery): the leader of the
    # moment the ISR emptied, elected again - uncleanly - if nobody in ISR or ELR is left.
    last_known_elr: tuple[int, ...] = ()


# Control requests carry the recipient's broker epoch (KIP-380): a broker that restarted
# (and registered again) ignores requests meant for its previous life, which a slow or
# duplicating network can still deliver.


@dataclass(frozen=True)
class LeaderAndIsrRequest:
    controller_id: int
    controller_epoch: int
    states: tuple[PartitionState, ...]
    broker_epoch: int = -1
    topic_configs: TopicConfigs = ()  # the overrides of these partitions' topics


@dataclass(frozen=True)
class StopReplicaRequest:
    controller_id: int
    controller_epoch: int
    tps: tuple[TopicPartition, ...]
    broker_epoch: int = -1
    delete: bool = False  # the topic is gone: delete the logs too


@dataclass(frozen=True)
class UpdateMetadataRequest:
    """The whole cluster state. Brokers apply leadership from it too, so a lost
    LeaderAndIsr is repaired by the next one (as KRaft brokers replay the metadata log)."""

    controller_id: int
    controller_epoch: int
    live_brokers: tuple[int, ...]
    states: tuple[PartitionState, ...]
    version: int = 0
    broker_epoch: int = -1
    topic_configs: TopicConfigs = ()  # every topic's overrides (Kafka's ConfigRecords)
    acls: tuple[AclBinding, ...] = ()  # every ACL (Kafka's AccessControlEntryRecords)


@dataclass(frozen=True)
class BrokerHeartbeatRequest:
    broker_id: int
    broker_epoch: int  # -1 asks to register (after a start or restart)
    metadata_version: int = -1  # the newest UpdateMetadata applied: the controller resends if behind
    # On registration, the epoch this process held before it was fenced; -1 after a (re)start:
    # the controller takes that as an unclean shutdown (KIP-966's PreviousBrokerEpoch).
    previous_broker_epoch: int = -1


@dataclass(frozen=True)
class BrokerHeartbeatResponse:
    controller_id: int
    controller_epoch: int
    error: ErrorCode
    broker_epoch: int = -1
    producer_id_block: tuple[int, int] = (-1, 0)  # (first id, count), on registration


@dataclass(frozen=True)
class AlterPartitionRequest:
    broker_id: int
    broker_epoch: int
    tp: TopicPartition
    leader_epoch: int
    partition_epoch: int
    new_isr: tuple[int, ...]


@dataclass(frozen=True)
class AlterPartitionResponse:
    tp: TopicPartition
    error: ErrorCode
    state: PartitionState | None = None


# --- runtime notifications ---------------------------------------------------------------


@dataclass(frozen=True)
class CreateTopicRequest:
    """To the controller: brokers forward their clients' CreateTopics (and the topics they
    create on first use) to it, as Kafka does since KIP-590."""

    correlation_id: int
    topic: str
    partitions: int  # <= 0: num.partitions
    replication_factor: int  # <= 0: default.replication.factor
    if_absent: bool = False  # creation on first use: a topic that exists is no error
    configs: Configs = ()  # the topic's overrides (impl/broker/topic_config.py)
    assignment: tuple[tuple[int, ...], ...] = ()  # explicit replicas per partition, if given


@dataclass(frozen=True)
class CreatePartitionsRequest:
    """To the controller: grow a topic to `total` partitions."""

    correlation_id: int
    topic: str
    total: int
    assignment: tuple[tuple[int, ...], ...] = ()  # explicit replicas of the new partitions, if given


@dataclass(frozen=True)
class AlterTopicConfigRequest:
    """To the controller: change a topic's overrides. `ops` are IncrementalAlterConfigs'
    (name, operation, value); with `replace` (AlterConfigs) they are SETs of the
    complete new set of overrides."""

    correlation_id: int
    topic: str
    ops: tuple[tuple[str, int, str | None], ...]
    replace: bool = False
    validate_only: bool = False


@dataclass(frozen=True)
class AlterAclsRequest:
    """To the controller: CreateAcls' new bindings, or DeleteAcls' filters (KIP-590
    forwarding). Answered by an AlterAclsResponse naming what each filter deleted."""

    correlation_id: int
    create: tuple[AclBinding, ...] = ()
    delete: tuple[AclBinding, ...] = ()


@dataclass(frozen=True)
class AlterAclsResponse:
    correlation_id: int
    error: ErrorCode
    message: str = ""
    deleted: tuple[tuple[AclBinding, ...], ...] = ()  # per filter


@dataclass(frozen=True)
class DeleteTopicRequest:
    """To the controller: the topic's partitions leave the metadata and its replicas
    delete their logs (StopReplica with delete)."""

    correlation_id: int
    topic: str


@dataclass(frozen=True)
class ReassignPartitionRequest:
    """To the controller: move a partition to `replicas` (None: cancel the reassignment)."""

    correlation_id: int
    tp: TopicPartition
    replicas: tuple[int, ...] | None


@dataclass(frozen=True)
class ListReassignmentsRequest:
    correlation_id: int
    tps: tuple[TopicPartition, ...] | None  # None: every partition


@dataclass(frozen=True)
class ListReassignmentsResponse:
    correlation_id: int
    ongoing: tuple[PartitionState, ...]


@dataclass(frozen=True)
class ElectLeadersRequest:
    correlation_id: int
    tps: tuple[TopicPartition, ...] | None  # None: every partition
    unclean: bool  # ElectionType UNCLEAN (1), else PREFERRED (0)


@dataclass(frozen=True)
class ElectLeadersResponse:
    correlation_id: int
    results: tuple[tuple[TopicPartition, ErrorCode, str], ...]


@dataclass(frozen=True)
class TopicAdminResponse:
    """The controller's answer to CreateTopic, CreatePartitions, DeleteTopic and AlterTopicConfig."""

    correlation_id: int
    error: ErrorCode
    message: str = ""


@dataclass(frozen=True)
class Disconnected:
    """The connection to `node` broke (its process died: the kernel closed its sockets,
    or a connect was refused). Requests in flight to it will never be answered.
    A machine that lost power or a network partition gives no such notice."""

    node: str
    refused: bool = False  # the request never left: the process was already gone
    crashed_at: int = -1  # (receiver's clock) requests sent before this may have been processed


# --- effects of the sans-IO state machines ------------------------------------------------

DATA_PLANE = "data"
CONTROL_PLANE = "control"


@dataclass(frozen=True)
class Send:
    dst: str
    message: object
    plane: str = DATA_PLANE


@dataclass(frozen=True)
class SetTimer:
    """Ask to be called back with `key` at time `at` (ms). Setting a key again replaces it."""

    key: tuple
    at: int


@dataclass(frozen=True)
class Note:
    """Something a process saw that a watcher may count (the simulator's danger events,
    impl/sim/dangers.py); it changes nothing, and the real runtime ignores it."""

    event: str
    detail: str = ""


Effect = Send | SetTimer | Note


@dataclass
class Effects:
    """Collects effects while a state machine handles one event."""

    items: list[Effect] = field(default_factory=list)

    def send(self, dst: str, message: object, plane: str = DATA_PLANE) -> None:
        self.items.append(Send(dst, message, plane))

    def timer(self, key: tuple, at: int) -> None:
        self.items.append(SetTimer(key, at))

    def note(self, event: str, detail: str = "") -> None:
        self.items.append(Note(event, detail))


def broker_node(broker_id: int) -> str:
    return f"broker-{broker_id}"


def controller_node(controller_id: int) -> str:
    return f"controller-{controller_id}"
