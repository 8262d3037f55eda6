"""The authorizer (impl/broker/acl.py) against Kafka's documented rules written out plainly
(properties/authorization.py): 10,000 Hypothesis-drawn (principal, ACL set, request)
triples agree - 500 ACL sets with 20 requests each -, and the rules' edges by hand."""

from hypothesis import given, settings
from hypothesis import strategies as st
from kafkaproof.impl.broker.acl import OPERATIONS, AclBinding, Authorizer
from kafkaproof.properties.authorization import allowed

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
