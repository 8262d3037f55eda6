"""Metadata in ZooKeeper (issue 22): `kafkaproof serve --broker-id N --metadata
zookeeper://...`, Kafka <= 3.x's layout, the controller elected through /controller and
fenced by /controller_epoch's zkVersion. ZooKeeper itself is Debian's package, started by
the `zookeeper_server` fixture (.ci/run installs it)."""

import json
import signal
import time

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.net.zookeeper_store import ZooKeeperMetadataStore, parse_address
from kafkaproof.impl.protocol.messages import AclBinding, PartitionState, TopicPartition
from kafkaproof.properties.duplicates import check_duplicates
from kafkaproof.properties.durability import check_durability
from kafkaproof.properties.order import check_send_order
from kazoo.client import KazooClient
from test_process_faults import PARTITIONS, SAFE, TOPIC, Production, read_back

from kafkaproof.nemesis import ProcessCluster

SESSION_MS = 4000


def client(zookeeper: str) -> KazooClient:
    hosts, chroot = parse_address(zookeeper)
    zk = KazooClient(hosts=hosts + chroot)
    zk.start(10)
    return zk


def wait_registered(zk: KazooClient, brokers: int) -> None:
    """Until the controller has registered every broker (a topic of that many replicas can be made)."""
    deadline = time.monotonic() + 30
    while len(json.loads(zk.get("/kafkaproof/cluster")[0] if zk.exists("/kafkaproof/cluster") else b"{}").get(
            "broker_epochs", {})) < brokers:
        assert time.monotonic() < deadline, "the brokers did not register"
        time.sleep(0.1)


def test_a_deposed_controller_cannot_commit(zookeeper):
    """Kafka's zkVersion fencing: a controller that lost /controller (its session expired
    while it was paused, say) still believes it is the controller; its next commit fails
    whole, because /controller_epoch is no longer at the version it wrote."""
    tp = TopicPartition("t", 0)
    a = ZooKeeperMetadataStore(zookeeper, SESSION_MS)
    b = ZooKeeperMetadataStore(zookeeper, SESSION_MS)
    try:
        assert a.acquire(0, 0, 0) == 1 and b.acquire(1, 0, 0) is None
        assert a.commit(1, lambda d: d.partitions.__setitem__(tp, PartitionState(tp, 0, 1, (0, 1), (0, 1), 1)))
        a.zk.delete("/controller")  # as if a's session had expired: b takes over
        assert b.acquire(1, 0, 0) == 2
        assert b.read().partitions[tp].isr == (0, 1)  # the new controller starts from what is in ZooKeeper
        assert not a.commit(1, lambda d: d.partitions.__setitem__(tp, PartitionState(tp, 0, 2, (0,), (0, 1), 2)))
        assert b.commit(2, lambda d: d.partitions.__setitem__(tp, PartitionState(tp, 1, 2, (1,), (0, 1), 2)))
        zk = client(zookeeper)
        state = json.loads(zk.get("/brokers/topics/t/partitions/0/state")[0])
        assert (state["leader"], state["isr"], state["controller_epoch"]) == (1, [1], 2)
        assert json.loads(zk.get("/brokers/topics/t")[0]) == {"version": 2, "partitions": {"0": [0, 1]}}
        assert zk.get("/controller_epoch")[0] == b"2"
        zk.stop()
    finally:
        a.close()
        b.close()


def test_acls_and_topic_configs_are_kept_in_kafka_s_znodes(zookeeper):
    s = ZooKeeperMetadataStore(zookeeper, SESSION_MS)
    acl = AclBinding("User:alice", "*", "READ", "ALLOW", "TOPIC", "LITERAL", "orders")
    try:
        s.acquire(0, 0, 0)
        assert s.commit(1, lambda d: (setattr(d, "acls", (acl,)), d.topic_configs.__setitem__(
            "orders", {"retention.ms": "1000"})))
        again = ZooKeeperMetadataStore(zookeeper, SESSION_MS)
        s.close()
        time.sleep(0.3)
        assert again.acquire(1, 0, 0) == 2
        assert again.read().acls == (acl,) and again.read().topic_configs == {"orders": {"retention.ms": "1000"}}
        zk = client(zookeeper)
        assert json.loads(zk.get("/kafka-acl/Topic/orders")[0])["acls"] == [list(acl)]
        assert json.loads(zk.get("/config/topics/orders")[0])["config"] == {"retention.ms": "1000"}
        zk.stop()
        again.close()
    finally:
        s.close()


def test_an_unreachable_zookeeper_is_a_clear_error():
    with pytest.raises(ConfigError, match="cannot reach ZooKeeper at 127.0.0.1:9"):
        ZooKeeperMetadataStore("zookeeper://127.0.0.1:9", connect_timeout_s=1)
    with pytest.raises(ConfigError, match="expected zookeeper://"):
        parse_address("http://example.com:2181")


def test_the_controller_killed_another_broker_takes_over_and_no_acknowledged_write_is_lost(zookeeper, tmp_path):
    """Three brokers, each its own process, on ZooKeeper; a real client produces with
    acks=all and idempotence; the controller's process is killed with SIGKILL. Its session
    expires, another broker creates /controller within zookeeper.session.timeout.ms (plus a
    margin), and the history and the logs read back go through the same checkers as the
    real-process harness (tests/test_process_faults.py): nothing acknowledged is lost,
    duplicated or reordered."""
    cluster = ProcessCluster(tmp_path, [*SAFE, f"zookeeper.session.timeout.ms={SESSION_MS}"], 3, zookeeper=zookeeper)
    zk = client(zookeeper)
    try:
        wait_registered(zk, 3)
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        admin.create_topics([NewTopic(TOPIC, PARTITIONS, 3)])
        admin.close()
        # Kafka's layout
        assert sorted(zk.get_children("/brokers/ids")) == ["0", "1", "2"]
        assert json.loads(zk.get("/brokers/ids/1")[0])["port"] == cluster.ports[1]
        first = json.loads(zk.get("/controller")[0])["brokerid"]
        epoch = int(zk.get("/controller_epoch")[0])
        deadline = time.monotonic() + 10
        while len(zk.get_children(f"/brokers/topics/{TOPIC}/partitions") if zk.exists(
                f"/brokers/topics/{TOPIC}/partitions") else []) < PARTITIONS and time.monotonic() < deadline:
            time.sleep(0.1)
        state = json.loads(zk.get(f"/brokers/topics/{TOPIC}/partitions/0/state")[0])
        assert state["leader"] in (0, 1, 2) and len(state["isr"]) >= 2

        run = Production(cluster.bootstrap, acks="all", enable_idempotence=True)
        time.sleep(3)
        cluster.kill(first)
        killed_at, t0 = run.now(), time.monotonic()
        while json.loads(zk.get("/controller")[0] if zk.exists("/controller") else b'{"brokerid": -1}')[
                "brokerid"] in (first, -1):
            assert time.monotonic() - t0 < SESSION_MS / 1000 + 8, "no new controller"
            time.sleep(0.1)
        took = time.monotonic() - t0
        second = json.loads(zk.get("/controller")[0])["brokerid"]
        epoch_after = int(zk.get("/controller_epoch")[0])
        time.sleep(3)  # production goes on under the new controller
        history = run.stop()
        log = read_back(cluster.bootstrap, PARTITIONS)
    finally:
        zk.stop()
        cluster.stop()
    print(f"controller {first} killed; {second} took over in {took:.1f} s (session {SESSION_MS} ms)")
    assert cluster.brokers[first].p.returncode == -signal.SIGKILL and second != first
    assert took <= SESSION_MS / 1000 + 5
    assert epoch_after == epoch + 1  # the new controller's epoch fences the old one's messages
    acked = [op for op in history.ops if op.type == "ok"]
    assert len(acked) > 300 and any(op.time > killed_at + SESSION_MS for op in acked)
    found = check_durability(history, log) + check_duplicates(history, log) + check_send_order(history)
    assert found == [], "\n".join(str(v) for v in found[:5])
