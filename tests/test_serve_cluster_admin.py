"""`serve`'s cluster admin APIs (issue 17): partition reassignments through the
controller (grow, catch up, shrink), ElectLeaders, DescribeLogDirs, DescribeProducers,
ListTransactions / DescribeTransactions and DescribeTopicPartitions - through
kafka-python's KafkaAdminClient and librdkafka's AdminClient where it has the call, raw
requests at the newest version otherwise - with Kafka's error for each bad request."""

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from confluent_kafka import ElectionType, Producer
from confluent_kafka import TopicPartition as RdTopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError as KpError
from kafka.structs import TopicPartition
from kafkaproof.impl.net.server import EmbeddedCluster
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import Effects
from kafkaproof.impl.protocol.messages import TopicPartition as Tp
from test_serve_groups import ask


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EmbeddedCluster(str(tmp_path_factory.mktemp("cluster-admin")), brokers=3, port=0,
                        props={"offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
                               "transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3",
                               "group.initial.rebalance.delay.ms": "0"}).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def kp(cluster):
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    yield admin
    admin.close()


def replicas(cluster, tp) -> tuple:
    return cluster.runtime.call_wait(lambda: cluster.controller.partitions[tp].replicas)


def wait_for(condition, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {seconds} s"
        time.sleep(0.1)


def test_a_reassignment_moves_the_data_and_then_the_partition(cluster, kp):
    cluster.create_topic("moving", 1, 1)
    tp = Tp("moving", 0)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    for i in range(5):
        producer.send("moving", f"v{i}".encode()).get(timeout=10)
    target = [b for b in (0, 1, 2) if b not in replicas(cluster, tp)]  # the two brokers without it
    kp.alter_partition_reassignments({TopicPartition("moving", 0): target})
    wait_for(lambda: list(replicas(cluster, tp)) == target and not kp.list_partition_reassignments(),
             "the reassignment completes")
    old = ({0, 1, 2} - set(target)).pop()
    wait_for(lambda: cluster.runtime.call_wait(lambda: tp not in cluster.brokers[old].partitions),
             "the removed replica deletes its log")
    producer.send("moving", b"v5").get(timeout=10)  # the new leader takes writes
    producer.close()
    consumer = KafkaConsumer("moving", bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    assert [r.value for _, r in zip(range(6), consumer, strict=False)] == [f"v{i}".encode() for i in range(6)]
    consumer.close()


def test_reassignments_to_unknown_brokers_or_of_nothing_are_refused(cluster, kp):
    cluster.create_topic("staying", 1, 1)
    raw = ask(cluster, 45, 0, {"timeout": timedelta(seconds=10), "topics": [
        {"name": "staying", "partitions": [{"partition_index": 0, "replicas": [0, 7]}]}]})
    [result] = raw.responses[0].partitions
    assert result.error_code == ErrorCode.INVALID_REPLICA_ASSIGNMENT, result
    cancel = ask(cluster, 45, 0, {"timeout": timedelta(seconds=10), "topics": [
        {"name": "staying", "partitions": [{"partition_index": 0, "replicas": None}]}]})
    assert cancel.responses[0].partitions[0].error_code == ErrorCode.NO_REASSIGNMENT_IN_PROGRESS
    unknown = ask(cluster, 45, 0, {"timeout": timedelta(seconds=10), "topics": [
        {"name": "no-such-topic", "partitions": [{"partition_index": 0, "replicas": [0]}]}]})
    assert unknown.responses[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    assert kp.list_partition_reassignments() == {}


def test_a_preferred_leader_election_moves_leadership_to_the_first_replica(cluster, kp):
    tp = Tp("ordered", 0)
    cluster.create_topic("ordered", 1, 2)
    first, second = replicas(cluster, tp)
    kp.alter_partition_reassignments({TopicPartition("ordered", 0): [second, first]})  # same set, new order
    wait_for(lambda: replicas(cluster, tp) == (second, first), "the reorder")
    assert cluster.runtime.call_wait(lambda: cluster.controller.partitions[tp].leader) == first
    rd = AdminClient({"bootstrap.servers": cluster.bootstrap})
    rd.elect_leaders(ElectionType.PREFERRED, [RdTopicPartition("ordered", 0)]).result(timeout=15)
    assert cluster.runtime.call_wait(lambda: cluster.controller.partitions[tp].leader) == second
    # Again: the preferred replica leads already. kafka-python reports it per partition.
    result = kp.elect_leaders(0, {"ordered": [0]}, raise_errors=False)
    assert _errors(result) == [ErrorCode.ELECTION_NOT_NEEDED]
    # An unclean election where a leader lives is not needed either.
    result = kp.elect_leaders(1, {"ordered": [0]}, raise_errors=False)
    assert _errors(result) == [ErrorCode.ELECTION_NOT_NEEDED]


def _errors(result) -> list[int]:
    return [p.error_code for t in result.replica_election_results for p in t.partition_result]


def test_describe_log_dirs_producers_and_topic_partitions(cluster, kp):
    cluster.create_topic("described", 2, 1)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "enable.idempotence": True})
    for i in range(4):
        producer.produce("described", value=b"x" * 100, partition=i % 2)
    assert producer.flush(10) == 0
    sizes = {(t["name"], p["partition_index"]): p["partition_size"] for b in kp.describe_log_dirs()
             for d in b["log_dirs"] for t in d["topics"] for p in t["partitions"]}
    assert sizes[("described", 0)] > 200 and sizes[("described", 1)] > 200
    [state] = kp.describe_producers([TopicPartition("described", 0)])[TopicPartition("described", 0)].active_producers
    assert state.producer_id >= 0 and state.last_sequence == 1  # two records, sequences 0 and 1
    [topic] = kp.describe_topic_partitions(["described"])["topics"]
    assert [(p["partition_index"], p["isr_nodes"]) for p in topic["partitions"]] == \
        [(p, list(replicas(cluster, Tp("described", p)))) for p in (0, 1)]


def test_list_and_describe_transactions(cluster, kp):
    cluster.create_topic("txn-out", 1, 1)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "billing-1"})
    producer.init_transactions(15)
    producer.begin_transaction()
    producer.produce("txn-out", b"paid")
    producer.commit_transaction(15)
    listed = {t.transactional_id: t.state.value for on_broker in kp.list_transactions().values() for t in on_broker}
    assert listed["billing-1"] == "CompleteCommit", listed
    described = kp.describe_transactions(["billing-1"])["billing-1"]
    assert (described.state.value, described.topic_partitions) == ("CompleteCommit", set())
    assert described.producer_id >= 0
    with pytest.raises(KpError) as err:  # (asked of its coordinator, found with FindCoordinator)
        kp.describe_transactions(["never-used"])
    assert err.value.errno == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    elsewhere = ask(cluster, 65, 0, {"transactional_ids": ["billing-1", "never-used"]})  # broker 0, raw
    assert {s.error_code for s in elsewhere.transaction_states} <= {ErrorCode.NOT_COORDINATOR,
                                                                    ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, 0}


def test_bad_cluster_admin_requests_leave_the_broker_serving(cluster):
    rd = AdminClient({"bootstrap.servers": cluster.bootstrap})
    result = rd.elect_leaders(ElectionType.PREFERRED, [RdTopicPartition("no-such-topic", 0)]).result(timeout=15)
    [error] = result.values()
    assert error.code() == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap)
    cluster.create_topic("still-fine", 1, 1)
    assert producer.send("still-fine", b"ok").get(timeout=10).offset == 0
    producer.close()


def test_describe_topic_partitions_carries_the_eligible_and_last_known_leaders(cluster, kp):
    """KIP-966's fields reach clients as the controller keeps them: EligibleLeaderReplicas
    and LastKnownElr (a state committed here directly; tests/test_scenarios.py shows the
    controller reaching such states)."""
    cluster.create_topic("elr-wire", 1, 3)
    tp = Tp("elr-wire", 0)

    def offline():
        c = cluster.controller
        st = c.partitions[tp]
        assert c._commit([replace(st, leader=-1, leader_epoch=st.leader_epoch + 1, isr=(), elr=st.replicas[1:],
                                  last_known_elr=st.replicas[:1], partition_epoch=st.partition_epoch + 1)])
        fx = Effects()
        c._send_metadata(fx)
        cluster.runtime.apply(c.node, fx.items)
        return st.replicas

    replicas_ = cluster.runtime.call_wait(offline)

    def described():
        [topic] = kp.describe_topic_partitions(["elr-wire"])["topics"]
        return [(p["leader_id"], p["isr_nodes"], p["eligible_leader_replicas"], p["last_known_elr"])
                for p in topic["partitions"]]

    wait_for(lambda: described() == [(-1, [], list(replicas_[1:]), list(replicas_[:1]))], "the ELR on the wire")
