"""`serve`'s admin APIs (issue 17) through two independent clients, kafka-python's
KafkaAdminClient and librdkafka's AdminClient (confluent-kafka): per-topic configs
honoured and described with their source, DeleteRecords, DeleteGroups, OffsetDelete,
DescribeCluster, explicit replica assignments - and each bad request answered with
Kafka's error code while the broker carries on."""

import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as RdTopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
)
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource as KpConfigResource
from kafka.admin import ConfigResourceType
from kafka.errors import KafkaError as KpError
from kafka.structs import OffsetAndMetadata, TopicPartition
from kafkaproof.impl.net.server import EmbeddedCluster
from kafkaproof.impl.protocol.errors import ErrorCode
from test_serve_groups import consume_in_group


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EmbeddedCluster(str(tmp_path_factory.mktemp("admin")), brokers=3, port=0,
                        props={"group.initial.rebalance.delay.ms": "0", "offsets.topic.replication.factor": "1",
                               "log.retention.check.interval.ms": "200", "log.cleaner.backoff.ms": "200"}).start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def rd(cluster):
    return AdminClient({"bootstrap.servers": cluster.bootstrap})


@pytest.fixture(scope="module")
def kp(cluster):
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    yield admin
    admin.close()


def create(rd, name: str, partitions: int = 1, rf: int = 1, **configs) -> None:
    futures = rd.create_topics([NewTopic(name, partitions, rf, config={k.replace("_", "."): str(v)
                                                                     for k, v in configs.items()})])
    futures[name].result(timeout=15)


def produce(cluster, topic: str, n: int, size: int = 10, acks="all", key: bool = False, **kw) -> list:
    """Send n records (with distinct keys if `key`); the futures' outcomes (metadata or the exception)."""
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks=acks, retries=0, max_request_size=10_000_000,
                             **kw)
    try:
        futures = [producer.send(topic, b"x" * size, key=str(i).encode() if key else None) for i in range(n)]
        producer.flush(timeout=20)
        out = []
        for f in futures:
            try:
                out.append(f.get(timeout=20))
            except KpError as e:
                out.append(e)
        return out
    finally:
        producer.close()


def configs_of(rd, topic: str) -> dict:
    [future] = rd.describe_configs([ConfigResource("topic", topic)]).values()
    return future.result(timeout=15)


# -- per-topic configs --------------------------------------------------------------------


def test_create_topics_configs_are_described_with_their_source(rd, kp):
    create(rd, "with-configs", retention_ms=123456, cleanup_policy="compact,delete")
    entries = configs_of(rd, "with-configs")
    assert entries["retention.ms"].value == "123456" and entries["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG
    assert entries["cleanup.policy"].value == "compact,delete"
    assert entries["segment.bytes"].source == 5 and entries["segment.bytes"].value == str(1 << 30)  # DEFAULT_CONFIG
    described = kp.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, "with-configs")])
    retention = described["topic"]["with-configs"]["retention.ms"]
    assert (retention["value"], retention["config_source"], retention["config_type"]) == \
        ("123456", "DYNAMIC_TOPIC_CONFIG", "LONG")
    broker = kp.describe_configs([KpConfigResource(ConfigResourceType.BROKER, "0")], config_filter="all")["broker"]["0"]
    assert broker["advertised.listeners"]["config_source"] == "STATIC_BROKER_CONFIG"  # where clients reach it
    assert broker["advertised.listeners"]["value"].startswith("PLAINTEXT://127.0.0.1:")


@pytest.mark.filterwarnings("ignore:alter_configs has been deprecated")
def test_incremental_and_full_alter_configs_change_what_is_described(rd, kp):
    create(rd, "altered")
    res = ConfigResource("topic", "altered", incremental_configs=[
        ConfigEntry("retention.ms", "5000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND)])
    [f] = rd.incremental_alter_configs([res]).values()
    f.result(timeout=15)
    entries = configs_of(rd, "altered")
    assert (entries["retention.ms"].value, entries["cleanup.policy"].value) == ("5000", "delete,compact")
    res = ConfigResource("topic", "altered", incremental_configs=[
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    [f] = rd.incremental_alter_configs([res]).values()
    f.result(timeout=15)
    assert configs_of(rd, "altered")["retention.ms"].source != 1
    # AlterConfigs replaces the whole set of overrides (librdkafka sends what it is given;
    # kafka-python reads the current overrides first and sends them with the change).
    [f] = rd.alter_configs([ConfigResource("topic", "altered", set_config={"segment.ms": "600000"})]).values()
    f.result(timeout=15)
    entries = configs_of(rd, "altered")
    assert entries["segment.ms"].value == "600000" and entries["cleanup.policy"].value == "delete"
    kp.alter_configs([KpConfigResource(ConfigResourceType.TOPIC, "altered", configs={"retention.ms": "7000"})],
                     incremental=False)
    entries = configs_of(rd, "altered")
    assert (entries["segment.ms"].value, entries["retention.ms"].value) == ("600000", "7000")


@pytest.mark.parametrize("key,value", [("no.such.config", "1"), ("retention.ms", "soon"),
                                       ("cleanup.policy", "shred"), ("min.insync.replicas", "0")])
def test_alter_configs_refuses_an_unknown_key_or_a_bad_value(rd, kp, cluster, key, value):
    create(rd, f"refuses-{key}")
    res = ConfigResource("topic", f"refuses-{key}", incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    [f] = rd.incremental_alter_configs([res]).values()
    with pytest.raises(KafkaException) as err:
        f.result(timeout=15)
    assert err.value.args[0].code() == ErrorCode.INVALID_CONFIG
    with pytest.raises(KafkaException) as err:
        [f] = rd.create_topics([NewTopic(f"born-bad-{key}", 1, 1, config={key: value})]).values()
        f.result(timeout=15)
    assert err.value.args[0].code() == ErrorCode.INVALID_CONFIG
    assert configs_of(rd, f"refuses-{key}").get(key) is None or configs_of(rd, f"refuses-{key}")[key].source != 1
    assert not isinstance(produce(cluster, f"refuses-{key}", 1)[0], Exception)  # the broker carries on


def test_topic_min_insync_replicas_and_max_message_bytes_are_honoured(rd, cluster):
    create(rd, "strict", min_insync_replicas=2)  # one replica: acks=all can never be met
    [r] = produce(cluster, "strict", 1)
    assert isinstance(r, KpError) and r.errno == ErrorCode.NOT_ENOUGH_REPLICAS
    [r] = produce(cluster, "strict", 1, acks=1)
    assert not isinstance(r, Exception)
    create(rd, "small", max_message_bytes=300)
    create(rd, "roomy")
    [r] = produce(cluster, "small", 1, size=1000)
    assert isinstance(r, KpError) and r.errno == ErrorCode.MESSAGE_TOO_LARGE
    [r] = produce(cluster, "roomy", 1, size=1000)
    assert not isinstance(r, Exception)


def test_log_append_time_stamps_records_with_the_brokers_clock(rd, cluster):
    create(rd, "append-time", message_timestamp_type="LogAppendTime")
    before = int(time.time() * 1000)
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap)
    producer.send("append-time", b"v", timestamp_ms=1_000).get(timeout=15)  # a CreateTime from 1970
    producer.close()
    consumer = KafkaConsumer("append-time", bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    [record] = [r for _, r in zip(range(1), consumer, strict=False)]
    consumer.close()
    assert record.timestamp_type == 1 and record.timestamp >= before


def test_segment_bytes_and_retention_are_honoured_per_topic(rd, cluster):
    create(rd, "short-lived", segment_bytes=300, retention_ms=1)
    create(rd, "compacted", segment_bytes=300, retention_ms=1, cleanup_policy="compact")
    for topic in ("short-lived", "compacted"):  # one record a batch, two batches a segment
        assert not any(isinstance(r, Exception) for r in produce(cluster, topic, 20, size=50, batch_size=1,
                                                                 key=True))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and earliest(cluster, "short-lived") == 0:
        time.sleep(0.2)
    # Old segments were deleted: the log starts later, and the newest records are still there.
    assert 0 < earliest(cluster, "short-lived") < 20
    assert earliest(cluster, "compacted") == 0  # cleanup.policy=compact: retention deletes nothing


def test_a_compacted_topic_keeps_the_latest_value_of_every_key(rd, cluster):
    """The broker's cleaner (impl/storage/cleaner.py) on a real topic: a reader from the
    beginning sees each key's latest value at its original offset, in order, and the
    records the cleaner could not reach; a record without a key is refused."""
    create(rd, "latest", cleanup_policy="compact", segment_bytes=300, min_cleanable_dirty_ratio="0.01")
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, batch_size=1, acks="all")
    written = [(f"k{i % 3}".encode(), f"v{i}".encode()) for i in range(30)]
    for k, v in written:
        producer.send("latest", key=k, value=v).get(timeout=10)
    with pytest.raises(KpError) as err:
        producer.send("latest", value=b"no key").get(timeout=10)
    assert err.value.errno == ErrorCode.INVALID_RECORD
    producer.close()

    def read() -> list:
        consumer = KafkaConsumer("latest", bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest",
                                 consumer_timeout_ms=2000)
        try:
            return [(r.offset, r.key, r.value) for r in consumer]
        finally:
            consumer.close()

    deadline = time.monotonic() + 15
    while len(got := read()) == 30 and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(got) < 30, "the cleaner never ran"
    assert [o for o, _, _ in got] == sorted({o for o, _, _ in got})  # offsets kept, in order
    assert all(written[o] == (k, v) for o, k, v in got)  # each at the offset it was written at
    latest = {k: (i, v) for i, (k, v) in enumerate(written)}
    assert all((i, k, v) in got for k, (i, v) in latest.items())


def earliest(cluster, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        return consumer.beginning_offsets([tp])[tp]
    finally:
        consumer.close()


# -- DeleteRecords ------------------------------------------------------------------------


def test_delete_records_moves_the_log_start_and_consumers_reset_past_it(rd, kp, cluster):
    create(rd, "trimmed")
    produce(cluster, "trimmed", 10)
    [f] = rd.delete_records([RdTopicPartition("trimmed", 0, 4)]).values()
    assert f.result(timeout=15).low_watermark == 4
    result = kp.delete_records({TopicPartition("trimmed", 0): 6})
    assert result[TopicPartition("trimmed", 0)]["low_watermark"] == 6
    assert earliest(cluster, "trimmed") == 6
    # A consumer positioned below the log start gets OFFSET_OUT_OF_RANGE and applies
    # auto.offset.reset=earliest: it reads from 6.
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest",
                             consumer_timeout_ms=10_000)
    tp = TopicPartition("trimmed", 0)
    consumer.assign([tp])
    consumer.seek(tp, 2)
    offsets = [r.offset for _, r in zip(range(4), consumer, strict=False)]
    consumer.close()
    assert offsets == [6, 7, 8, 9]


def test_delete_records_beyond_the_high_watermark_is_refused(rd, cluster):
    create(rd, "not-so-far")
    produce(cluster, "not-so-far", 3)
    [f] = rd.delete_records([RdTopicPartition("not-so-far", 0, 50)]).values()
    with pytest.raises(KafkaException) as err:
        f.result(timeout=15)
    assert err.value.args[0].code() == ErrorCode.OFFSET_OUT_OF_RANGE
    assert earliest(cluster, "not-so-far") == 0
    assert not isinstance(produce(cluster, "not-so-far", 1)[0], Exception)


# -- groups -------------------------------------------------------------------------------


def test_delete_groups_refuses_a_live_group_and_deletes_an_empty_one(rd, kp, cluster):
    create(rd, "grouped")
    consumer = consume_in_group(cluster, "doomed", "grouped")
    [f] = rd.delete_consumer_groups(["doomed"]).values()
    with pytest.raises(KafkaException) as err:
        f.result(timeout=15)
    assert err.value.args[0].code() == ErrorCode.NON_EMPTY_GROUP
    consumer.close()  # leaves the group: it is empty now, its offsets kept
    assert kp.list_group_offsets("doomed")["doomed"]
    [f] = rd.delete_consumer_groups(["doomed"]).values()
    f.result(timeout=15)
    assert kp.describe_groups(["doomed"])["doomed"]["group_state"] == "Dead"
    assert not kp.list_group_offsets("doomed")["doomed"]
    assert kp.delete_groups(["never-was"])["never-was"] is not None  # GROUP_ID_NOT_FOUND, per group


def test_offset_delete_refuses_a_subscribed_topic_and_deletes_the_others(kp, rd, cluster):
    create(rd, "watched")
    create(rd, "forgotten")
    consumer = consume_in_group(cluster, "half", "watched")
    consumer.commit({TopicPartition("forgotten", 0): OffsetAndMetadata(3, "", -1)})
    result = kp.delete_group_offsets("half", [TopicPartition("watched", 0), TopicPartition("forgotten", 0)])
    errors = {tp.topic: err.errno for tp, err in result.items()}
    assert errors == {"watched": ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, "forgotten": 0}
    left = kp.list_group_offsets("half")["half"]
    assert [tp.topic for tp in left] == ["watched"]
    consumer.close()


# -- the cluster and assignments ----------------------------------------------------------


def test_describe_cluster_names_every_broker(rd, kp, cluster):
    described = rd.describe_cluster().result(timeout=15)
    assert sorted(n.id for n in described.nodes) == [0, 1, 2]
    assert described.cluster_id == "kafkaproof"
    assert sorted(b["broker_id"] for b in kp.describe_cluster()["brokers"]) == [0, 1, 2]


def test_explicit_replica_assignments_are_kept_and_unknown_brokers_refused(rd, kp, cluster):
    [f] = rd.create_topics([NewTopic("placed", num_partitions=2, replica_assignment=[[2, 1], [1, 0]])]).values()
    f.result(timeout=15)
    md = rd.list_topics("placed", timeout=15).topics["placed"].partitions
    assert [md[p].replicas for p in sorted(md)] == [[2, 1], [1, 0]]
    [f] = rd.create_topics([NewTopic("misplaced", num_partitions=1, replica_assignment=[[9]])]).values()
    with pytest.raises(KafkaException) as err:
        f.result(timeout=15)
    assert err.value.args[0].code() == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    [f] = rd.create_partitions([NewPartitions("placed", 3, replica_assignment=[[7, 0]])]).values()
    with pytest.raises(KafkaException) as err:
        f.result(timeout=15)
    assert err.value.args[0].code() == ErrorCode.INVALID_REPLICA_ASSIGNMENT
    [f] = rd.create_partitions([NewPartitions("placed", 3, replica_assignment=[[0, 2]])]).values()
    f.result(timeout=15)
    md = rd.list_topics("placed", timeout=15).topics["placed"].partitions
    assert md[2].replicas == [0, 2]


def test_deleted_records_and_topic_configs_survive_a_restart(tmp_path):
    """The log start (log-start-offset-checkpoint) and the topic's overrides (the
    metadata store) are where a restarted serve finds them."""
    with EmbeddedCluster(str(tmp_path), brokers=1, port=0) as c:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        create(admin, "kept", max_message_bytes=400)
        produce(c, "kept", 5)
        [f] = admin.delete_records([RdTopicPartition("kept", 0, 3)]).values()
        assert f.result(timeout=15).low_watermark == 3
    with EmbeddedCluster(str(tmp_path), brokers=1, port=0) as c:
        admin = AdminClient({"bootstrap.servers": c.bootstrap})
        assert earliest(c, "kept") == 3
        assert configs_of(admin, "kept")["max.message.bytes"].value == "400"
        [r] = produce(c, "kept", 1, size=1000)
        assert isinstance(r, KpError) and r.errno == ErrorCode.MESSAGE_TOO_LARGE


def test_the_pytest_plugin_is_installed_with_the_package(tmp_path):
    """Through the `pytest11` entry point, in any project: `pytest --fixtures` lists both."""
    import subprocess
    import sys

    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    out = subprocess.run([sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path).stdout
    assert "kafka_broker -- " in out and "kafka_sim_cluster -- " in out, out[-2000:]
