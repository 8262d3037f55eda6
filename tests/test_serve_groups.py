"""`serve` as a drop-in Kafka for client tests (issue 17): the consumer protocol's bytes
pass through the coordinator untouched, and produce answers carry the log start."""

import socket
import struct
import time
from datetime import timedelta

import pytest
from kafkaproof.impl.net.codec import SIZE, decode_response, encode_request
from kafkaproof.impl.net.server import EmbeddedCluster
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EmbeddedCluster(str(tmp_path_factory.mktemp("groups")), brokers=1, port=0,
                        props={"group.initial.rebalance.delay.ms": "0"}).start()
    c.create_topic("t", 2, 1)
    yield c
    c.stop()


def ask(c: EmbeddedCluster, api: int, version: int, body: dict):
    with socket.create_connection(c.endpoints[0], timeout=10) as s:
        s.sendall(encode_request(api, version, 1, body))
        data = b""
        while len(data) < 4 or len(data) < 4 + SIZE.unpack_from(data)[0]:
            chunk = s.recv(65536)
            assert chunk, "the broker closed the connection"
            data += chunk
    return decode_response(api, version, data[4:])


# A custom assignor's metadata: a version Kafka's ConsumerProtocol does not know, with
# userData - the coordinator must hand it to the leader byte for byte (Kafka's
# GroupCoordinator never parses it). serve used to parse it and close the connection.
CUSTOM = struct.pack(">h", 7) + b"\x00\x00\x00\x01\x00\x01tuser-data:\x00\xff"
ASSIGNMENT = struct.pack(">h", 3) + b"opaque assignment with userData \x00\x01\x02"


def test_consumer_protocol_bytes_pass_through_the_coordinator(cluster):
    found = ask(cluster, 10, 3, {"key": "custom", "key_type": 0})
    assert found.error_code == 0
    join = {"group_id": "custom", "session_timeout": timedelta(seconds=10),
            "rebalance_timeout": timedelta(seconds=10), "member_id": "",
            "group_instance_id": None, "protocol_type": "consumer",
            "protocols": [{"name": "my-assignor", "metadata": CUSTOM}]}
    joined = ask(cluster, 11, 5, join)
    assert joined.error_code == 0, joined.error_code
    assert joined.leader == joined.member_id and joined.protocol_name == "my-assignor"
    assert [bytes(mb.metadata) for mb in joined.members] == [CUSTOM]
    synced = ask(cluster, 14, 3, {"group_id": "custom", "generation_id": joined.generation_id,
                                  "member_id": joined.member_id, "group_instance_id": None,
                                  "assignments": [{"member_id": joined.member_id, "assignment": ASSIGNMENT}]})
    assert synced.error_code == 0 and bytes(synced.assignment) == ASSIGNMENT
    # A member that asks again (a stable group) is answered the same bytes.
    again = ask(cluster, 14, 3, {"group_id": "custom", "generation_id": joined.generation_id,
                                 "member_id": joined.member_id, "group_instance_id": None, "assignments": []})
    assert again.error_code == 0 and bytes(again.assignment) == ASSIGNMENT


def test_produce_answers_carry_the_log_start_offset(cluster):
    """Kafka answers the partition's log start (0 for a new log), not -1; an error
    answers -1."""
    def produce(topic: str):
        # Stamped now: a record stamped 0 is past retention.ms, so the broker's retention
        # check would delete its segment once rolled and move t-0's log start mid-module.
        batch = encode_batch([SimpleRecord(b"v", timestamp=int(time.time() * 1000))])
        r = ask(cluster, 0, 9, {"transactional_id": None, "acks": -1, "timeout": timedelta(seconds=10),
                                "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": batch}]}]})
        return r.responses[0].partition_responses[0]

    ok = produce("t")
    assert (ok.error_code, ok.log_start_offset) == (0, 0) and ok.base_offset >= 0
    missing = produce("no-such-topic")
    assert missing.error_code != 0 and missing.log_start_offset == -1


def consume_in_group(cluster, group: str, topic: str = "t") -> "KafkaConsumer":  # noqa: F821
    """A kafka-python member of `group`, assigned its partitions, that committed offset 1
    of partition 0 (tests/test_serve_admin.py uses it too)."""
    from kafka import KafkaConsumer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    consumer = KafkaConsumer(topic, bootstrap_servers=cluster.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False)
    for _ in range(60):
        consumer.poll(timeout_ms=250)
        if consumer.assignment():
            break
    assert consumer.assignment(), "the consumer never joined"
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
    return consumer


def test_admin_clients_list_and_describe_groups(cluster):
    """kafka-python's and librdkafka's admin clients see a live group - listed, Stable,
    its member and the partitions assigned to it - and a group never used is Dead."""
    from confluent_kafka.admin import AdminClient
    from kafka import KafkaAdminClient

    consumer = consume_in_group(cluster, "listed")
    try:
        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        try:
            assert {"group_id": "listed", "protocol_type": "consumer", "group_state": "Stable"} in admin.list_groups()
            described = admin.describe_groups(["listed", "never-used"])
            listed = described["listed"]
            assert (listed["group_state"], listed["protocol_type"], listed["protocol_data"]) == \
                ("Stable", "consumer", "range")
            [mb] = listed["members"]
            assert mb["member_metadata"]["topics"] == ["t"]
            assert mb["member_assignment"]["assigned_partitions"] == [{"topic": "t", "partitions": [0, 1]}]
            assert (described["never-used"]["group_state"], described["never-used"]["members"]) == ("Dead", [])
            offsets = admin.list_group_offsets("listed")  # what admin tools read before resetting
            assert [(tp.topic, tp.partition, o.offset) for tp, o in offsets["listed"].items()] == [("t", 0, 1)]
        finally:
            admin.close()
        rd = AdminClient({"bootstrap.servers": cluster.bootstrap})
        listed = rd.list_consumer_groups().result(timeout=10)
        assert "listed" in {g.group_id for g in listed.valid}
        desc = rd.describe_consumer_groups(["listed"])["listed"].result(timeout=10)
        assert desc.state.name == "STABLE" and len(desc.members) == 1
        assert {tp.partition for tp in desc.members[0].assignment.topic_partitions} == {0, 1}
    finally:
        consumer.close()


def test_the_readme_api_table_is_the_gateways():
    import pathlib
    import re

    from kafkaproof.impl.net.gateway import api_table_markdown

    text = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    [table] = re.findall(r"<!-- api-table -->\n(.*?)\n<!-- /api-table -->", text, re.S)
    assert table == api_table_markdown()


def test_a_fenced_producer_gets_the_error_code_its_request_version_knows(cluster):
    """PRODUCER_FENCED (90) only from EndTxn / AddOffsetsToTxn v2 and InitProducerId v4
    on (KIP-588); an older client expects INVALID_PRODUCER_EPOCH (47) and would not
    recognise 90."""
    assert ask(cluster, 10, 3, {"key": "fz", "key_type": 1}).error_code == 0
    init = {"transactional_id": "fz", "transaction_timeout": timedelta(seconds=60)}
    for _ in range(40):
        first = ask(cluster, 22, 1, init)
        if first.error_code == 0:
            break
        time.sleep(0.1)  # the transaction state topic is being created
    assert first.error_code == 0, first.error_code
    assert ask(cluster, 22, 1, init).error_code == 0  # a second instance: the first is fenced
    end = {"transactional_id": "fz", "producer_id": first.producer_id, "producer_epoch": first.producer_epoch,
           "committed": False}
    assert ask(cluster, 26, 1, end).error_code == 47
    assert ask(cluster, 26, 2, end).error_code == 90
    offsets = {k: end[k] for k in ("transactional_id", "producer_id", "producer_epoch")} | {"group_id": "g"}
    assert ask(cluster, 25, 1, offsets).error_code == 47
    assert ask(cluster, 25, 2, offsets).error_code == 90


def test_a_commit_keeps_its_metadata_and_epoch_and_an_unknown_topic_is_refused(cluster):
    """OffsetCommit keeps the metadata string and leader epoch a client commits (OffsetFetch
    answers them back), and a partition the cluster does not have is refused with
    UNKNOWN_TOPIC_OR_PARTITION while the others commit."""
    from kafka import KafkaAdminClient, KafkaConsumer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, group_id="meta", enable_auto_commit=False)
    try:
        consumer.commit({TopicPartition("t", 1): OffsetAndMetadata(5, "checkpoint-7", 0)})
    finally:
        consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        got = admin.list_group_offsets("meta")["meta"][TopicPartition("t", 1)]
    finally:
        admin.close()
    assert (got.offset, got.metadata, got.leader_epoch) == (5, "checkpoint-7", 0)

    commit = {"group_id": "standalone", "generation_id_or_member_epoch": -1, "member_id": "",
              "group_instance_id": None, "topics": [
                  {"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                "committed_leader_epoch": -1, "committed_metadata": "m"}]},
                  {"name": "no-such-topic", "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                            "committed_leader_epoch": -1, "committed_metadata": ""}]}]}
    answer = ask(cluster, 8, 8, commit)
    assert {(t.name, p.error_code) for t in answer.topics for p in t.partitions} == {("t", 0), ("no-such-topic", 3)}


def test_list_offsets_by_timestamp_finds_the_first_record_at_or_after_it(cluster):
    """ListOffsets by time answers the first offset whose timestamp is at least the one
    asked (Kafka's fetchOffsetByTimestamp), -1 past the last; not the latest offset."""
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.structs import TopicPartition

    # Records stamped in 1970 are past any retention: keep them (Kafka would delete their
    # segments at the next retention check, as it does by timestamp).
    cluster.create_topic("timed", 1, 1, configs={"retention.ms": "-1"})
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    try:
        for i, ts in enumerate((1_000, 2_000, 3_000, 4_000)):
            p.send("timed", b"%d" % i, partition=0, timestamp_ms=ts).get(timeout=10)
    finally:
        p.close()
    c = KafkaConsumer(bootstrap_servers=cluster.bootstrap)
    try:
        tp = TopicPartition("timed", 0)
        found = c.offsets_for_times({tp: 2_500})[tp]
        assert (found.offset, found.timestamp) == (2, 3_000)
        assert c.offsets_for_times({tp: 500})[tp].offset == 0
        assert c.offsets_for_times({tp: 9_000})[tp] is None  # none at or after it
    finally:
        c.close()
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as RdPartition

    rd = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "timed-reader"})
    try:
        [got] = rd.offsets_for_times([RdPartition("timed", 0, 2_500)], timeout=10)
        assert got.offset == 2
    finally:
        rd.close()


def test_create_topics_answers_each_topic_and_refuses_an_unknown_config(cluster):
    """CreateTopics is answered per topic, as Kafka does: an unknown config name is
    INVALID_CONFIG, a name that cannot exist INVALID_TOPIC_EXCEPTION, and a valid topic
    in the same request is created."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    futures = admin.create_topics([NewTopic("made", 1, 1), NewTopic("odd-config", 1, 1, config={"no.such.key": "1"}),
                                   NewTopic("bad/name", 1, 1)])
    futures["made"].result(10)
    codes = {}
    for name in ("odd-config", "bad/name"):
        with pytest.raises(KafkaException) as e:
            futures[name].result(10)
        codes[name] = e.value.args[0].code()
    assert codes == {"odd-config": 40, "bad/name": 17}  # INVALID_CONFIG, INVALID_TOPIC_EXCEPTION
    assert "made" in admin.list_topics(timeout=5).topics and "odd-config" not in admin.list_topics(timeout=5).topics
    checked = admin.create_topics([NewTopic("would-be", 1, 1), NewTopic("odd", 1, 1, config={"no.such.key": "1"})],
                                  validate_only=True)
    checked["would-be"].result(10)
    with pytest.raises(KafkaException):
        checked["odd"].result(10)
    assert "would-be" not in admin.list_topics(timeout=5).topics  # only validated


def test_transactional_offset_commits_keep_their_metadata_and_leader_epoch(cluster):
    """TxnOffsetCommit carries OffsetAndMetadata like OffsetCommit does; they used to be
    dropped (kafka-python's own integration suite, test_transactional_producer_offsets)."""
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.structs import OffsetAndMetadata, TopicPartition

    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, transactional_id="with-metadata")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send("t", b"v", partition=0)
    producer.send_offsets_to_transaction({TopicPartition("t", 0): OffsetAndMetadata(5, "processed", 0)}, "txn-meta")
    producer.commit_transaction()
    producer.close()
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        [(tp, committed)] = admin.list_group_offsets("txn-meta")["txn-meta"].items()
    finally:
        admin.close()
    assert (committed.offset, committed.metadata, committed.leader_epoch) == (5, "processed", 0)


def test_list_offsets_answers_every_special_timestamp_and_an_unknown_partition(cluster):
    """ListOffsets v10: -4 (earliest local) is the log start without tiered storage, -5
    (latest tiered) no offset; a partition the topic lacks is UNKNOWN_TOPIC_OR_PARTITION,
    not a NOT_LEADER_OR_FOLLOWER a client would retry until it times out."""
    cluster.create_topic("specials", 1, 1)  # its own: other tests write to t

    def offset(partition: int, timestamp: int):
        r = ask(cluster, 2, 10, {"replica_id": -1, "isolation_level": 0, "timeout": timedelta(seconds=5),
                                 "topics": [{"name": "specials", "partitions": [
                                     {"partition_index": partition, "current_leader_epoch": -1,
                                      "timestamp": timestamp}]}]})
        p = r.topics[0].partitions[0]
        return p.error_code, p.offset

    assert offset(0, -4) == offset(0, -2) == (0, 0)
    assert offset(0, -5) == (0, -1)
    assert offset(100, -1)[0] == 3  # UNKNOWN_TOPIC_OR_PARTITION
