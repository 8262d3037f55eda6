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
