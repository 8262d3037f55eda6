"""The broker's authorizer (Kafka's StandardAuthorizer rules; issue 22): ACL bindings and
the decision for one (principal, host, operation, resource). Kept by resource type and
pattern - literal names in a dict, prefixes in a list - so a request looks at the ACLs
that can match its resource, not at all of them. Checked against the plain transcription
of Kafka's documented rules in properties/authorization.py (tests/test_acl.py).

The codes are Kafka's (the CreateAcls / DescribeAcls / DeleteAcls schemas'), for the wire.
"""

from __future__ import annotations

from kafkaproof.impl.protocol.messages import AclBinding

RESOURCE_TYPES = {"ANY": 1, "TOPIC": 2, "GROUP": 3, "CLUSTER": 4, "TRANSACTIONAL_ID": 5, "DELEGATION_TOKEN": 6,
                  "USER": 7}
OPERATIONS = {"ANY": 1, "ALL": 2, "READ": 3, "WRITE": 4, "CREATE": 5, "DELETE": 6, "ALTER": 7, "DESCRIBE": 8,
              "CLUSTER_ACTION": 9, "DESCRIBE_CONFIGS": 10, "ALTER_CONFIGS": 11, "IDEMPOTENT_WRITE": 12,
              "CREATE_TOKENS": 13, "DESCRIBE_TOKENS": 14}
PERMISSIONS = {"ANY": 1, "DENY": 2, "ALLOW": 3}
PATTERNS = {"ANY": 1, "MATCH": 2, "LITERAL": 3, "PREFIXED": 4}
CLUSTER_NAME = "kafka-cluster"
WILDCARD = "*"
ANY_USER = "User:*"
# An ALLOW of any of these allows the key too (Kafka's AclEntry.supportedOperations rules).
IMPLIES = {"DESCRIBE": frozenset({"DESCRIBE", "READ", "WRITE", "DELETE", "ALTER", "ALL"}),
           "DESCRIBE_CONFIGS": frozenset({"DESCRIBE_CONFIGS", "ALTER_CONFIGS", "ALL"})}


class Authorizer:
    def __init__(self, super_users=(), allow_everyone_if_no_acl_found: bool = False) -> None:
        self.super_users = frozenset(super_users)
        self.allow_if_none = allow_everyone_if_no_acl_found
        self._literal: dict[tuple[str, str], set[AclBinding]] = {}  # (type, name or "*") -> ACLs
        self._prefixed: dict[str, set[AclBinding]] = {}  # type -> PREFIXED ACLs

    def add(self, acl: AclBinding) -> None:
        if acl.pattern_type == "PREFIXED":
            self._prefixed.setdefault(acl.resource_type, set()).add(acl)
        else:
            self._literal.setdefault((acl.resource_type, acl.resource_name), set()).add(acl)

    def remove(self, acl: AclBinding) -> None:
        if acl.pattern_type == "PREFIXED":
            self._prefixed.get(acl.resource_type, set()).discard(acl)
        else:
            self._literal.get((acl.resource_type, acl.resource_name), set()).discard(acl)

    @classmethod
    def of(cls, acls, super_users=(), allow_everyone_if_no_acl_found: bool = False) -> Authorizer:
        a = cls(super_users, allow_everyone_if_no_acl_found)
        for acl in acls:
            a.add(acl)
        return a

    def bindings(self) -> list[AclBinding]:
        return sorted({a for group in (*self._literal.values(), *self._prefixed.values()) for a in group})

    def matching(self, resource_type: str, name: str) -> list[AclBinding]:
        """Every ACL whose pattern matches the resource (any principal, operation)."""
        out = [*self._literal.get((resource_type, name), ()), *self._literal.get((resource_type, WILDCARD), ())]
        out += [a for a in self._prefixed.get(resource_type, ()) if name.startswith(a.resource_name)]
        return out

    def authorize(self, principal: str, host: str, operation: str, resource_type: str, name: str) -> bool:
        if principal in self.super_users:
            return True
        acls = self.matching(resource_type, name)
        if not acls:
            return self.allow_if_none
        allowed_by = IMPLIES.get(operation, frozenset({operation, "ALL"}))
        allow = False
        for a in acls:
            if a.principal not in (principal, ANY_USER) or a.host not in (host, WILDCARD):
                continue
            if a.permission == "DENY" and a.operation in (operation, "ALL"):
                return False  # a deny wins over every allow
            allow = allow or (a.permission == "ALLOW" and a.operation in allowed_by)
        return allow


def matches_filter(acl: AclBinding, f: AclBinding) -> bool:
    """DescribeAcls' and DeleteAcls' filters (Kafka's AclBindingFilter): None or ANY match
    anything; pattern type MATCH matches every ACL that applies to the filter's resource
    name (the literal name, the wildcard, a prefix of it)."""
    if f.principal is not None and f.principal != acl.principal:
        return False
    if f.host is not None and f.host != acl.host:
        return False
    if f.operation not in ("ANY", acl.operation) or f.permission not in ("ANY", acl.permission):
        return False
    if f.resource_type not in ("ANY", acl.resource_type):
        return False
    if f.pattern_type == "MATCH":
        if f.resource_name is None:
            return True
        if acl.pattern_type == "PREFIXED":
            return f.resource_name.startswith(acl.resource_name)
        return acl.resource_name in (f.resource_name, WILDCARD)
    if f.pattern_type not in ("ANY", acl.pattern_type):
        return False
    return f.resource_name is None or f.resource_name == acl.resource_name


def invalid(acl: AclBinding) -> str | None:
    """Why CreateAcls refuses a binding (Kafka answers INVALID_REQUEST), or None."""
    for field_name, value, allowed in (("resource type", acl.resource_type, RESOURCE_TYPES),
                                       ("operation", acl.operation, OPERATIONS),
                                       ("permission", acl.permission, PERMISSIONS),
                                       ("pattern type", acl.pattern_type, PATTERNS)):
        if value not in allowed or value in ("ANY", "MATCH"):
            return f"{field_name} {value} cannot be in an ACL"
    if not acl.principal or ":" not in acl.principal:
        return f"principal {acl.principal!r} is not TYPE:NAME"
    if not acl.host or not acl.resource_name:
        return "an ACL names its host and resource"
    if acl.resource_type == "CLUSTER" and acl.resource_name != CLUSTER_NAME:
        return f"the cluster resource is named {CLUSTER_NAME}"
    return None


def by_code(table: dict[str, int], code: int) -> str:
    """A wire code's name (an unknown code is UNKNOWN, which nothing matches)."""
    return next((name for name, c in table.items() if c == code), "UNKNOWN")
