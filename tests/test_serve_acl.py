"""ACLs enforced by `serve` (issue 22): CreateAcls, DescribeAcls and DeleteAcls through
real admin clients, and a principal without the ACL gets Kafka's error for each resource
type - topic, group, transactional id, cluster - and sees nothing of what it may not
describe. The decisions are the authorizer's (impl/broker/acl.py, checked against Kafka's
documented rules in tests/test_acl.py); these tests show the requests ask it as Kafka does."""

import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from kafka import KafkaAdminClient
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePatternFilter,
)
from kafka.admin import ResourceType as KpResourceType
from kafka.errors import ClusterAuthorizationFailedError, SecurityDisabledError
from kafkaproof.impl.net.codec import decode_response, encode_request
from kafkaproof.impl.net.server import EmbeddedCluster

USERS = {"admin": "admin-secret", "alice": "alice-secret", "mallory": "mallory-secret"}
PROPS = {"listeners": "SASL_PLAINTEXT://:9092", "sasl.enabled.mechanisms": "PLAIN",
         "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
         "super.users": "User:admin", "offsets.topic.num.partitions": "1", "offsets.topic.replication.factor": "1",
         "transaction.state.log.num.partitions": "1", "transaction.state.log.replication.factor": "1",
         "transaction.state.log.min.isr": "1", "group.initial.rebalance.delay.ms": "0"}
ALL = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
                       AclPermissionType.ANY)
KP_ALL = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
                   resource_pattern=ResourcePatternFilter(KpResourceType.ANY, None, ACLResourcePatternType.ANY))


def allow(rtype, name, operation, principal="User:alice", pattern=ResourcePatternType.LITERAL):
    return AclBinding(rtype, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)


ALICE = [allow(ResourceType.TOPIC, "orders", AclOperation.WRITE), allow(ResourceType.TOPIC, "orders", AclOperation.READ),
         allow(ResourceType.GROUP, "billing", AclOperation.READ),
         allow(ResourceType.TRANSACTIONAL_ID, "tx-", AclOperation.WRITE, pattern=ResourcePatternType.PREFIXED)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with EmbeddedCluster(str(tmp_path_factory.mktemp("acl")), port=0, props=PROPS, users=USERS) as c:
        admin = AdminClient(conf(c, "admin"))
        for f in admin.create_topics([NewTopic("orders", 1, 1), NewTopic("secret", 1, 1)]).values():
            f.result(10)
        for f in admin.create_acls(ALICE).values():
            assert f.result(10) is None
        wait_for_acls(admin, len(ALICE))
        yield c


def conf(cluster, user: str, **extra) -> dict:
    return {"bootstrap.servers": cluster.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
            "sasl.username": user, "sasl.password": USERS[user], **extra}


def wait_for_acls(admin: AdminClient, n: int) -> list:
    """The controller commits, then every broker learns them from UpdateMetadata."""
    for _ in range(50):
        found = admin.describe_acls(ALL).result(10)
        if len(found) == n:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{n} ACLs expected, {found}")


def produce(cluster, user: str, topic: str, errors: list | None = None, **extra) -> KafkaError | None:
    """The delivery's error (None: written); the client's other errors into `errors`."""
    done = []
    p = Producer(conf(cluster, user, error_cb=(errors if errors is not None else []).append, **extra))
    p.produce(topic, b"v", on_delivery=lambda err, msg: done.append(err))
    p.flush(20)
    return done[0]


def raw_as(cluster, user: str, api: int, version: int, body: dict):
    """One request on a connection authenticated with SASL/PLAIN; its decoded response."""
    host, port = cluster.bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        for i, (k, v, b) in enumerate([(17, 1, {"mechanism": "PLAIN"}),
                                       (36, 2, {"auth_bytes": f"\0{user}\0{USERS[user]}".encode()}),
                                       (api, version, body)]):
            s.sendall(encode_request(k, v, i, b))
            (size,) = struct.unpack(">i", _exactly(s, 4))
            frame = _exactly(s, size)
        return decode_response(api, version, frame)


def _exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed by the broker")
        data += chunk
    return data


def test_the_acls_are_described_as_created(cluster):
    admin = AdminClient(conf(cluster, "admin"))
    found = admin.describe_acls(ALL).result(10)
    assert sorted(map(str, found)) == sorted(map(str, ALICE))


def test_topic_a_principal_writes_and_reads_only_where_allowed(cluster):
    assert produce(cluster, "alice", "orders") is None
    assert produce(cluster, "alice", "secret").code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # It does not even see the topic: a listing leaves it out, a fetch of it is refused.
    assert sorted(AdminClient(conf(cluster, "alice")).list_topics(timeout=10).topics) == ["orders"]
    fetch = {"replica_id": -1, "max_wait": 0, "min_bytes": 1, "max_bytes": 1 << 20, "topics": [
        {"topic": t, "partitions": [{"partition": 0, "fetch_offset": 0, "partition_max_bytes": 1 << 20}]}
        for t in ("orders", "secret")]}
    answer = {t.topic: t.partitions[0] for t in raw_as(cluster, "alice", 1, 4, fetch).responses}
    assert answer["orders"].error_code == 0 and answer["orders"].records
    assert answer["secret"].error_code == KafkaError.TOPIC_AUTHORIZATION_FAILED and not answer["secret"].records
    # mallory has no ACL at all: every topic is denied (allow.everyone.if.no.acl.found=false)
    assert produce(cluster, "mallory", "orders").code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert AdminClient(conf(cluster, "mallory")).list_topics(timeout=10).topics == {}


def test_group_only_the_allowed_group_can_be_joined(cluster):
    assert first(cluster, "other").error().code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    assert first(cluster, "billing").error() is None  # a record of orders, read in group billing


def first(cluster, group: str):
    """The first record or error alice's consumer in `group` gets."""
    c = Consumer(conf(cluster, "alice", **{"group.id": group, "auto.offset.reset": "earliest"}))
    c.subscribe(["orders"])
    try:
        for _ in range(30):
            m = c.poll(1.0)
            if m is not None:
                return m
        raise AssertionError(f"nothing in 30 s for group {group}")
    finally:
        c.close()


def test_transactional_id_only_the_allowed_prefix(cluster):
    p = Producer(conf(cluster, "alice", **{"transactional.id": "other-1"}))
    with pytest.raises(KafkaException) as e:
        p.init_transactions(10)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    p = Producer(conf(cluster, "alice", **{"transactional.id": "tx-1"}))
    p.init_transactions(20)
    p.begin_transaction()
    p.produce("orders", b"in a transaction")
    p.commit_transaction(20)


def test_cluster_only_super_users_change_or_describe_acls(cluster):
    alice = AdminClient(conf(cluster, "alice"))
    [future] = alice.create_acls([allow(ResourceType.TOPIC, "secret", AclOperation.READ)]).values()
    with pytest.raises(KafkaException) as e:
        future.result(10)
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    kp = KafkaAdminClient(bootstrap_servers=cluster.bootstrap, security_protocol="SASL_PLAINTEXT",
                          sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-secret")
    with pytest.raises(ClusterAuthorizationFailedError):
        kp.describe_acls(KP_ALL)
    kp.close()
    # An idempotent producer needs IDEMPOTENT_WRITE on the cluster, or WRITE on some topic
    # (KIP-679): mallory has neither.
    answer = raw_as(cluster, "mallory", 22, 4, {"transactional_id": None, "transaction_timeout": 60000,
                                                "producer_id": -1, "producer_epoch": -1})
    assert answer.error_code == KafkaError.CLUSTER_AUTHORIZATION_FAILED and answer.producer_id == -1
    assert raw_as(cluster, "alice", 22, 4, {"transactional_id": None, "transaction_timeout": 60000,
                                            "producer_id": -1, "producer_epoch": -1}).error_code == 0


def test_deleting_an_acl_takes_the_access_away(cluster):
    admin = AdminClient(conf(cluster, "admin"))
    extra = allow(ResourceType.TOPIC, "orders", AclOperation.WRITE, principal="User:mallory")
    for f in admin.create_acls([extra]).values():
        f.result(10)
    wait_for_acls(admin, len(ALICE) + 1)
    assert produce(cluster, "mallory", "orders") is None
    [deleted] = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "orders", ResourcePatternType.MATCH,
                                                    "User:mallory", None, AclOperation.ANY,
                                                    AclPermissionType.ANY)]).values()
    assert [str(a) for a in deleted.result(10)] == [str(extra)]
    wait_for_acls(admin, len(ALICE))
    assert produce(cluster, "mallory", "orders").code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_one_request_allowed_for_one_topic_and_denied_for_another(cluster):
    """Each topic of one CreateTopics answered with its own result: the denied one is refused
    at once, the allowed one waits for the controller - and neither takes the other's."""
    admin = AdminClient(conf(cluster, "admin"))
    grant = allow(ResourceType.TOPIC, "a-", AclOperation.CREATE, pattern=ResourcePatternType.PREFIXED)
    for f in admin.create_acls([grant]).values():
        f.result(10)
    wait_for_acls(admin, len(ALICE) + 1)
    alice = AdminClient(conf(cluster, "alice"))
    futures = alice.create_topics([NewTopic("a-1", 1, 1), NewTopic("b-1", 1, 1), NewTopic("a-2", 1, 1)])
    assert futures["a-1"].result(10) is None and futures["a-2"].result(10) is None
    with pytest.raises(KafkaException) as e:
        futures["b-1"].result(10)
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    for f in admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "a-", ResourcePatternType.PREFIXED, None, None,
                                                 AclOperation.ANY, AclPermissionType.ANY)]).values():
        f.result(10)
    wait_for_acls(admin, len(ALICE))


def test_acls_live_in_the_metadata_and_survive_a_restart(tmp_path):
    with EmbeddedCluster(str(tmp_path), port=0, props=PROPS, users=USERS) as c:
        admin = AdminClient(conf(c, "admin"))
        for f in admin.create_acls(ALICE[:1]).values():
            f.result(10)
        wait_for_acls(admin, 1)
    with EmbeddedCluster(str(tmp_path), port=0, props=PROPS, users=USERS) as c:
        admin = AdminClient(conf(c, "admin"))
        assert [str(a) for a in wait_for_acls(admin, 1)] == [str(ALICE[0])]


def test_without_an_authorizer_the_acl_apis_say_security_disabled(tmp_path):
    with EmbeddedCluster(str(tmp_path), port=0) as c:
        kp = KafkaAdminClient(bootstrap_servers=c.bootstrap)
        with pytest.raises(SecurityDisabledError):
            kp.describe_acls(KP_ALL)
        kp.close()
