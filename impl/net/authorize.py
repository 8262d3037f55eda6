"""Authorization of client requests (issue 22), as Kafka's KafkaApis asks its authorizer.

Every wire request reaches the broker as internal requests (gateway.py), one per
partition, group or transactional id; NEEDS says what each internal request needs - the
operation, resource and the error a refusal carries - as KafkaApis checks them
(`authorize(request.context, WRITE, TOPIC, ...)` and so on). A refused internal request is
never sent: the gateway answers it at once with its response type carrying the error,
and the wire response is gathered as usual, so a denied partition of a produce request
is TOPIC_AUTHORIZATION_FAILED while the others are written. What a listing shows (Metadata
without topics, ListGroups, ListTransactions) is filtered by the gateway with `allows`.

The decision itself is impl/broker/acl.py's, over the ACLs the controller sent in its
last UpdateMetadata (`acls()`), with `super.users` and `allow.everyone.if.no.acl.found`.
Without `authorizer.class.name` everything is allowed, as in Kafka.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from kafkaproof.impl.broker.acl import CLUSTER_NAME, IMPLIES, Authorizer
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode

ANONYMOUS = "User:ANONYMOUS"  # a PLAINTEXT (or SSL without a certificate) connection's principal
TOPIC_DENIED = ErrorCode.TOPIC_AUTHORIZATION_FAILED
GROUP_DENIED = ErrorCode.GROUP_AUTHORIZATION_FAILED
CLUSTER_DENIED = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
TXN_DENIED = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

# (operation, resource type, resource name, error); a name of None asks "on any resource of
# the type" (Kafka's authorizeByResourceType).
Need = tuple[str, str, str | None, ErrorCode]


def _txn(tid: str | None) -> list[Need]:
    return [("WRITE", "TRANSACTIONAL_ID", tid, TXN_DENIED)] if tid else []


def _topics(op: str, tps) -> list[Need]:
    return [(op, "TOPIC", t, TOPIC_DENIED) for t in sorted({tp.topic for tp in tps})]


def _coordinator(msg: m.FindCoordinatorRequest) -> list[Need]:
    if msg.key_type == m.TRANSACTION:
        return [("DESCRIBE", "TRANSACTIONAL_ID", msg.key, TXN_DENIED)]
    return [("DESCRIBE", "GROUP", msg.key, GROUP_DENIED)]


def _init_producer(msg: m.InitProducerIdRequest) -> list[Need]:
    if msg.transactional_id:
        return _txn(msg.transactional_id)
    # An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (KIP-679).
    return [("IDEMPOTENT_WRITE|WRITE", "CLUSTER|TOPIC", None, CLUSTER_DENIED)]


def _group(op: str) -> Callable:
    return lambda msg: [(op, "GROUP", msg.group_id, GROUP_DENIED)]


NEEDS: dict[type, Callable[[object], list[Need]]] = {
    m.ProduceRequest: lambda msg: _txn(msg.transactional_id) + _topics("WRITE", [msg.tp]),
    m.FetchRequest: lambda msg: _topics("READ", [msg.tp]),
    m.ListOffsetsRequest: lambda msg: _topics("DESCRIBE", [msg.tp]),
    m.OffsetsForLeaderEpochRequest: lambda msg: _topics("DESCRIBE", [msg.tp]),
    m.DeleteRecordsRequest: lambda msg: _topics("DELETE", [msg.tp]),
    m.DescribeProducersRequest: lambda msg: _topics("READ", [msg.tp]),
    m.FindCoordinatorRequest: _coordinator,
    m.JoinGroupRequest: _group("READ"),
    m.SyncGroupRequest: _group("READ"),
    m.HeartbeatRequest: _group("READ"),
    m.LeaveGroupRequest: _group("READ"),
    m.OffsetCommitRequest: lambda msg: _group("READ")(msg) + _topics("READ", [tp for tp, _ in msg.offsets]),
    m.OffsetFetchRequest: _group("DESCRIBE"),
    m.DescribeGroupRequest: _group("DESCRIBE"),
    m.DeleteGroupRequest: _group("DELETE"),
    m.OffsetDeleteRequest: lambda msg: _group("DELETE")(msg) + _topics("READ", msg.tps),
    m.InitProducerIdRequest: _init_producer,
    m.AddPartitionsToTxnRequest: lambda msg: _txn(msg.transactional_id) + _topics("WRITE", msg.tps),
    m.AddOffsetsToTxnRequest: lambda msg: _txn(msg.transactional_id) + _group("READ")(msg),
    m.EndTxnRequest: lambda msg: _txn(msg.transactional_id),
    m.TxnOffsetCommitRequest: lambda msg: (_txn(msg.transactional_id) + _group("READ")(msg)
                                           + _topics("READ", [tp for tp, _ in msg.offsets])),
    m.DescribeTransactionRequest: lambda msg: [("DESCRIBE", "TRANSACTIONAL_ID", msg.transactional_id, TXN_DENIED)],
    # to the controller
    m.CreateTopicRequest: lambda msg: [("CREATE", "CLUSTER|TOPIC", msg.topic, TOPIC_DENIED)],
    m.DeleteTopicRequest: lambda msg: [("DELETE", "TOPIC", msg.topic, TOPIC_DENIED)],
    m.CreatePartitionsRequest: lambda msg: [("ALTER", "TOPIC", msg.topic, TOPIC_DENIED)],
    m.AlterTopicConfigRequest: lambda msg: [("ALTER_CONFIGS", "TOPIC", msg.topic, TOPIC_DENIED)],
    m.ReassignPartitionRequest: lambda msg: [("ALTER", "CLUSTER", CLUSTER_NAME, CLUSTER_DENIED)],
}
ANSWERED_BY = {m.ProduceRequest: m.ProduceResponse, m.FetchRequest: m.FetchResponse,
               m.ListOffsetsRequest: m.ListOffsetsResponse, m.OffsetsForLeaderEpochRequest: m.OffsetsForLeaderEpochResponse,
               m.DeleteRecordsRequest: m.DeleteRecordsResponse, m.DescribeProducersRequest: m.DescribeProducersResponse,
               m.FindCoordinatorRequest: m.FindCoordinatorResponse, m.JoinGroupRequest: m.JoinGroupResponse,
               m.SyncGroupRequest: m.SyncGroupResponse, m.HeartbeatRequest: m.HeartbeatResponse,
               m.LeaveGroupRequest: m.LeaveGroupResponse, m.OffsetCommitRequest: m.OffsetCommitResponse,
               m.OffsetFetchRequest: m.OffsetFetchResponse, m.DescribeGroupRequest: m.DescribeGroupResponse,
               m.DeleteGroupRequest: m.DeleteGroupResponse, m.OffsetDeleteRequest: m.OffsetDeleteResponse,
               m.InitProducerIdRequest: m.InitProducerIdResponse,
               m.AddPartitionsToTxnRequest: m.AddPartitionsToTxnResponse,
               m.AddOffsetsToTxnRequest: m.AddOffsetsToTxnResponse, m.EndTxnRequest: m.EndTxnResponse,
               m.TxnOffsetCommitRequest: m.TxnOffsetCommitResponse,
               m.DescribeTransactionRequest: m.DescribeTransactionResponse,
               m.CreateTopicRequest: m.TopicAdminResponse, m.DeleteTopicRequest: m.TopicAdminResponse,
               m.CreatePartitionsRequest: m.TopicAdminResponse, m.AlterTopicConfigRequest: m.TopicAdminResponse,
               m.ReassignPartitionRequest: m.TopicAdminResponse}
# Wire requests checked whole, on the cluster (answered {"error_code": CLUSTER_AUTHORIZATION_FAILED}).
CLUSTER_APIS = {"DescribeCluster": "DESCRIBE", "DescribeLogDirs": "DESCRIBE", "ListPartitionReassignments": "DESCRIBE",
                "AlterPartitionReassignments": "ALTER", "ElectLeaders": "ALTER", "DescribeAcls": "DESCRIBE"}


class Guard:
    def __init__(self, config, acls: Callable[[], tuple]) -> None:
        self.enabled = config.authorizer
        self.super_users = config.super_users
        self.allow_if_none = config.allow_everyone_if_no_acl_found
        self.acls = acls
        self._built: tuple[tuple, Authorizer] | None = None

    def authorizer(self) -> Authorizer:
        acls = self.acls()
        built = self._built
        if built is None or built[0] is not acls:  # (the broker replaces its tuple whole)
            built = (acls, Authorizer.of(acls, self.super_users, self.allow_if_none))
            self._built = built
        return built[1]

    def allows(self, who: tuple[str, str], operation: str, resource_type: str, name: str | None) -> bool:
        """`operation` and `resource_type` may name alternatives ("CREATE", "CLUSTER|TOPIC"):
        any one allowing is enough. A name of None: on any resource of the type."""
        if not self.enabled:
            return True
        principal, host = who
        a = self.authorizer()
        for rtype in resource_type.split("|"):
            for op in operation.split("|"):
                if name is None:
                    if self._any(a, principal, host, op, rtype):
                        return True
                elif a.authorize(principal, host, op, rtype, CLUSTER_NAME if rtype == "CLUSTER" else name):
                    return True
        return False

    def refusal(self, who: tuple[str, str], msg) -> object | None:
        """The response refusing internal request `msg` for `who`, or None if allowed."""
        needs = NEEDS.get(type(msg))
        if not self.enabled or needs is None:
            return None
        for op, rtype, name, error in needs(msg):
            if not self.allows(who, op, rtype, name):
                return _answer(ANSWERED_BY[type(msg)], msg, error)
        return None

    def _any(self, a: Authorizer, principal: str, host: str, op: str, rtype: str) -> bool:
        """Kafka's authorizeByResourceType: some ALLOW for the principal on a resource of the
        type, and no DENY of the operation on every such resource (LITERAL "*" or PREFIXED "")."""
        if principal in self.super_users:
            return True
        mine = [b for b in a.bindings() if b.resource_type == rtype and b.principal in (principal, "User:*")
                and b.host in (host, "*")]
        if any(b.permission == "DENY" and b.operation in (op, "ALL")
               and (b.pattern_type, b.resource_name) in (("LITERAL", "*"), ("PREFIXED", "")) for b in mine):
            return False
        return any(b.permission == "ALLOW" and b.operation in IMPLIES.get(op, frozenset({op, "ALL"})) for b in mine)


def _answer(cls: type, msg, error: ErrorCode):
    names = {f.name for f in dataclasses.fields(cls)}
    values = {"correlation_id": msg.correlation_id, "error": error}
    if "tp" in names:
        values["tp"] = msg.tp
    if "message" in names:
        values["message"] = f"{error.name}: not authorized"
    return cls(**values)
