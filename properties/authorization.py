"""Kafka's authorization rules, written from its documentation as plainly as they read
(the reference that impl/broker/acl.py's authorizer is checked against; issue 22):

- An ACL says "Principal P is Allowed/Denied Operation O from Host H on any Resource R
  matching ResourcePattern RP" (KIP-11, KIP-290). A pattern is LITERAL (the name, or "*"
  for every resource of the type) or PREFIXED (every name that starts with it).
- Super users may do everything.
- A DENY that matches wins over any ALLOW. A DENY of ALL denies every operation.
- An ALLOW of the operation, or of ALL, allows it; READ, WRITE, DELETE and ALTER each
  imply DESCRIBE, and ALTER_CONFIGS implies DESCRIBE_CONFIGS.
- A principal "User:*" matches every principal, host "*" every host.
- If no ACL matches the resource at all, no one but super users may act on it, unless
  allow.everyone.if.no.acl.found=true.

Everything is a string here: principals "User:alice", operations "READ", resource types
"TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID", patterns "LITERAL" / "PREFIXED",
permissions "ALLOW" / "DENY". An ACL is (principal, host, operation, permission,
resource type, pattern type, resource name).
"""

from __future__ import annotations

IMPLIED_BY = {"DESCRIBE": ("READ", "WRITE", "DELETE", "ALTER"), "DESCRIBE_CONFIGS": ("ALTER_CONFIGS",)}


def matches_resource(acl: tuple, resource_type: str, name: str) -> bool:
    _, _, _, _, acl_type, pattern, acl_name = acl
    if acl_type != resource_type:
        return False
    if pattern == "LITERAL":
        return acl_name == name or acl_name == "*"
    return pattern == "PREFIXED" and name.startswith(acl_name)


def allowed(acls, super_users, allow_if_no_acl: bool, principal: str, host: str, operation: str,
            resource_type: str, name: str) -> bool:
    if principal in super_users:
        return True
    on_resource = [a for a in acls if matches_resource(a, resource_type, name)]
    if not on_resource:
        return allow_if_no_acl
    mine = [a for a in on_resource if a[0] in (principal, "User:*") and a[1] in (host, "*")]
    for a in mine:
        if a[3] == "DENY" and a[2] in (operation, "ALL"):
            return False
    for a in mine:
        if a[3] == "ALLOW" and (a[2] in (operation, "ALL") or a[2] in IMPLIED_BY.get(operation, ())):
            return True
    return False


# Kafka's documentation, "Operations and Resources on Protocols" (security.html#operations_resources_and_protocols):
# what a client request needs, by request - written from that table, not from
# impl/net/authorize.py. (resource type, operation, which name) per need; "topic", "group",
# "txn" name the request's own; "cluster" is kafka-cluster. CLUSTER|TOPIC: either allows it.
DOCUMENTED = {
    "Produce": [("TRANSACTIONAL_ID", "WRITE", "txn"), ("TOPIC", "WRITE", "topic")],
    "Fetch": [("TOPIC", "READ", "topic")],
    "ListOffsets": [("TOPIC", "DESCRIBE", "topic")],
    "OffsetForLeaderEpoch": [("TOPIC", "DESCRIBE", "topic")],
    "DeleteRecords": [("TOPIC", "DELETE", "topic")],
    "DescribeProducers": [("TOPIC", "READ", "topic")],
    "FindCoordinator(group)": [("GROUP", "DESCRIBE", "group")],
    "FindCoordinator(transaction)": [("TRANSACTIONAL_ID", "DESCRIBE", "txn")],
    "JoinGroup": [("GROUP", "READ", "group")],
    "SyncGroup": [("GROUP", "READ", "group")],
    "Heartbeat": [("GROUP", "READ", "group")],
    "LeaveGroup": [("GROUP", "READ", "group")],
    "OffsetCommit": [("GROUP", "READ", "group"), ("TOPIC", "READ", "topic")],
    "OffsetFetch": [("GROUP", "DESCRIBE", "group")],
    "DescribeGroups": [("GROUP", "DESCRIBE", "group")],
    "DeleteGroups": [("GROUP", "DELETE", "group")],
    "OffsetDelete": [("GROUP", "DELETE", "group"), ("TOPIC", "READ", "topic")],
    "InitProducerId(transactional)": [("TRANSACTIONAL_ID", "WRITE", "txn")],
    "AddPartitionsToTxn": [("TRANSACTIONAL_ID", "WRITE", "txn"), ("TOPIC", "WRITE", "topic")],
    "AddOffsetsToTxn": [("TRANSACTIONAL_ID", "WRITE", "txn"), ("GROUP", "READ", "group")],
    "EndTxn": [("TRANSACTIONAL_ID", "WRITE", "txn")],
    "TxnOffsetCommit": [("TRANSACTIONAL_ID", "WRITE", "txn"), ("GROUP", "READ", "group"), ("TOPIC", "READ", "topic")],
    "DescribeTransactions": [("TRANSACTIONAL_ID", "DESCRIBE", "txn")],
    "CreateTopics": [("CLUSTER|TOPIC", "CREATE", "topic")],
    "DeleteTopics": [("TOPIC", "DELETE", "topic")],
    "CreatePartitions": [("TOPIC", "ALTER", "topic")],
    "AlterConfigs(topic)": [("TOPIC", "ALTER_CONFIGS", "topic")],
    "AlterPartitionReassignments": [("CLUSTER", "ALTER", "cluster")],
}


def request_allowed(acls, super_users, allow_if_no_acl: bool, principal: str, host: str, request: str,
                    names: dict[str, str]) -> bool:
    """May `principal` make `request` (a DOCUMENTED key) on the resources `names` gives?"""
    for types, operation, which in DOCUMENTED[request]:
        name = "kafka-cluster" if which == "cluster" else names[which]
        if which == "txn" and not name:
            continue  # (a non-transactional produce names no transactional id)
        if not any(allowed(acls, super_users, allow_if_no_acl, principal, host, operation, t,
                           "kafka-cluster" if t == "CLUSTER" else name) for t in types.split("|")):
            return False
    return True
