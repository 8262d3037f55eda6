"""The authorizer (impl/broker/acl.py) against Kafka's documented rules written out plainly
(properties/authorization.py): 10,000 Hypothesis-drawn (principal, ACL set, request)
triples agree - 500 ACL sets with 20 requests each -, and the rules' edges by hand."""

from hypothesis import given, settings
from hypothesis import strategies as st
from kafkaproof.impl.broker.acl import OPERATIONS, AclBinding, Authorizer
from kafkaproof.impl.broker.config import AUTHORIZERS, BrokerConfig
from kafkaproof.impl.net.authorize import Guard
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.properties.authorization import DOCUMENTED, allowed, request_allowed

PRINCIPALS = ["User:alice", "User:bob", "User:*"]
HOSTS = ["10.0.0.1", "10.0.0.2", "*"]
TYPES = ["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"]
NAMES = ["orders", "orders-eu", "ord", "payments", "*", "kafka-cluster", ""]
OPS = [op for op in OPERATIONS if op != "ANY"]

acls = st.builds(AclBinding, st.sampled_from(PRINCIPALS), st.sampled_from(HOSTS), st.sampled_from(OPS),
                 st.sampled_from(["ALLOW", "DENY"]), st.sampled_from(TYPES), st.sampled_from(["LITERAL", "PREFIXED"]),
                 st.sampled_from(NAMES))
requests = st.tuples(st.sampled_from(PRINCIPALS[:2] + ["User:admin"]), st.sampled_from(HOSTS[:2]),
                     st.sampled_from([op for op in OPS if op != "ALL"]), st.sampled_from(TYPES),
                     st.sampled_from([n for n in NAMES if n != "*"]))


def authorizer(bindings, super_users, allow_if_none) -> Authorizer:
    a = Authorizer(super_users, allow_if_none)
    for b in bindings:
        a.add(b)
    return a


@settings(max_examples=500)
@given(st.lists(acls, max_size=8), st.booleans(), st.booleans(), st.lists(requests, min_size=20, max_size=20))
def test_the_authorizer_agrees_with_kafka_s_documented_rules(bindings, admin_is_super, allow_if_none, asked):
    supers = ["User:admin"] if admin_is_super else []
    a = authorizer(bindings, supers, allow_if_none)
    for principal, host, operation, resource_type, name in asked:
        expected = allowed(bindings, supers, allow_if_none, principal, host, operation, resource_type, name)
        assert a.authorize(principal, host, operation, resource_type, name) == expected, (principal, operation, name)


def test_the_rules_at_their_edges():
    topic = ("TOPIC", "LITERAL", "orders")
    a = authorizer([AclBinding("User:alice", "*", "READ", "ALLOW", *topic),
                    AclBinding("User:*", "10.0.0.2", "ALL", "DENY", *topic),
                    AclBinding("User:bob", "*", "WRITE", "ALLOW", "TOPIC", "PREFIXED", "ord")], ["User:admin"], False)
    assert a.authorize("User:alice", "10.0.0.1", "READ", "TOPIC", "orders")
    assert a.authorize("User:alice", "10.0.0.1", "DESCRIBE", "TOPIC", "orders")  # READ implies DESCRIBE
    assert not a.authorize("User:alice", "10.0.0.1", "WRITE", "TOPIC", "orders")
    assert not a.authorize("User:alice", "10.0.0.2", "READ", "TOPIC", "orders")  # a deny wins
    assert a.authorize("User:bob", "10.0.0.1", "WRITE", "TOPIC", "orders-eu")  # the prefix
    assert not a.authorize("User:bob", "10.0.0.1", "WRITE", "TOPIC", "payments")  # no ACL: deny by default
    assert a.authorize("User:admin", "10.0.0.2", "DELETE", "TOPIC", "orders")  # a super user
    assert authorizer([], [], True).authorize("User:bob", "10.0.0.1", "WRITE", "TOPIC", "payments")
    a.remove(AclBinding("User:*", "10.0.0.2", "ALL", "DENY", *topic))
    assert a.authorize("User:alice", "10.0.0.2", "READ", "TOPIC", "orders")
    assert len(a.bindings()) == 2


# -- requests: what impl/net/authorize.py asks of the authorizer, against Kafka's table -------

def _requests(topic: str, group: str, txn: str) -> dict:
    """One internal request per row of the documented table, naming these resources."""
    tp = TopicPartition(topic, 0)
    return {
        "Produce": m.ProduceRequest(1, tp, -1, 1000, b"", txn or None),
        "Fetch": m.FetchRequest(1, tp, m.CONSUMER_REPLICA_ID, 0, -1, 1 << 20, 0, 1),
        "ListOffsets": m.ListOffsetsRequest(1, tp, -1),
        "OffsetForLeaderEpoch": m.OffsetsForLeaderEpochRequest(1, tp, m.CONSUMER_REPLICA_ID, -1, 0),
        "DeleteRecords": m.DeleteRecordsRequest(1, tp, 0),
        "DescribeProducers": m.DescribeProducersRequest(1, tp),
        "FindCoordinator(group)": m.FindCoordinatorRequest(1, group, m.GROUP),
        "FindCoordinator(transaction)": m.FindCoordinatorRequest(1, txn, m.TRANSACTION),
        "JoinGroup": m.JoinGroupRequest(1, group, "", 10_000, 10_000, ("range",), (topic,)),
        "SyncGroup": m.SyncGroupRequest(1, group, 1, "m"),
        "Heartbeat": m.HeartbeatRequest(1, group, 1, "m"),
        "LeaveGroup": m.LeaveGroupRequest(1, group, "m"),
        "OffsetCommit": m.OffsetCommitRequest(1, group, 1, "m", ((tp, 5),)),
        "OffsetFetch": m.OffsetFetchRequest(1, group, (tp,)),
        "DescribeGroups": m.DescribeGroupRequest(1, group),
        "DeleteGroups": m.DeleteGroupRequest(1, group),
        "OffsetDelete": m.OffsetDeleteRequest(1, group, (tp,)),
        "InitProducerId(transactional)": m.InitProducerIdRequest(1, txn, 60_000),
        "AddPartitionsToTxn": m.AddPartitionsToTxnRequest(1, txn, 7, 0, (tp,)),
        "AddOffsetsToTxn": m.AddOffsetsToTxnRequest(1, txn, 7, 0, group),
        "EndTxn": m.EndTxnRequest(1, txn, 7, 0, True),
        "TxnOffsetCommit": m.TxnOffsetCommitRequest(1, txn, group, 7, 0, 1, "m", ((tp, 5),)),
        "DescribeTransactions": m.DescribeTransactionRequest(1, txn),
        "CreateTopics": m.CreateTopicRequest(1, topic, 1, 1),
        "DeleteTopics": m.DeleteTopicRequest(1, topic),
        "CreatePartitions": m.CreatePartitionsRequest(1, topic, 2),
        "AlterConfigs(topic)": m.AlterTopicConfigRequest(1, topic, (("retention.ms", 0, "1"),)),
        "AlterPartitionReassignments": m.ReassignPartitionRequest(1, tp, (0,)),
    }


RESOURCE_NAMES = ["orders", "orders-eu", "payments"]


@settings(max_examples=300)
@given(st.lists(acls, max_size=8), st.booleans(), st.sampled_from(PRINCIPALS[:2] + ["User:admin"]),
       st.sampled_from(HOSTS[:2]), st.sampled_from(RESOURCE_NAMES), st.sampled_from(RESOURCE_NAMES),
       st.sampled_from(["", *RESOURCE_NAMES]))
def test_each_request_is_allowed_exactly_when_kafka_s_table_says(bindings, allow_if_none, principal, host, topic,
                                                                 group, txn):
    """For every client request the gateway sends (internal form), the guard refuses it
    exactly when Kafka's "Operations and Resources on Protocols" table, applied with the
    documented rules, denies one of its needs - 300 ACL sets x 28 requests. A refusal is
    the request's own response type, carrying the error of the resource denied."""
    config = BrokerConfig.from_properties({"authorizer.class.name": AUTHORIZERS[0], "super.users": "User:admin",
                                           "allow.everyone.if.no.acl.found": str(allow_if_none).lower()})
    guard = Guard(config, lambda: tuple(bindings))
    for name, msg in _requests(topic, group, txn).items():
        if txn == "" and ("txn" in str(DOCUMENTED[name]) and name != "Produce"):
            continue  # (a transactional request always names its id)
        expected = request_allowed(bindings, ["User:admin"], allow_if_none, principal, host, name,
                                   {"topic": topic, "group": group, "txn": txn})
        refusal = guard.refusal((principal, host), msg)
        assert (refusal is None) == expected, (name, principal, bindings)
        if refusal is not None:
            assert refusal.correlation_id == 1 and refusal.error.name.endswith("_AUTHORIZATION_FAILED"), refusal
