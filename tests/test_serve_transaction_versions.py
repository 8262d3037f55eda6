"""Transaction versions per client, as Kafka 4 negotiates them (KIP-890 part 2): `serve`
finalizes `transaction.version` 2 in ApiVersions; a client that takes it up sends no
AddPartitionsToTxn (Produce v12 adds the partition), no AddOffsetsToTxn (TxnOffsetCommit
v5 adds the offsets) and reads its next epoch from EndTxn v5, while a client on older
versions (kafka-python) keeps transaction version 1 on the same broker. No Python client
speaks version 2 (librdkafka has no KIP-890 yet), so the second one here is written out
request by request."""

from datetime import timedelta

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafkaproof.impl.net.server import EmbeddedCluster
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch
from test_serve_cluster_admin import wait_for  # tests/: one polling helper
from test_serve_groups import ask

PRODUCE, FETCH_OFFSETS, FIND, INIT, ADD_PARTITIONS, END, TXN_COMMIT, API_VERSIONS = 0, 9, 10, 22, 24, 26, 28, 18
FENCED = {ErrorCode.PRODUCER_FENCED, ErrorCode.INVALID_PRODUCER_EPOCH}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EmbeddedCluster(str(tmp_path_factory.mktemp("txn-versions")), brokers=1, port=0,
                        props={"offsets.topic.replication.factor": "1", "transaction.state.log.replication.factor": "1",
                               "transaction.state.log.num.partitions": "1", "offsets.topic.num.partitions": "1",
                               "group.initial.rebalance.delay.ms": "0"}).start()
    c.create_topic("tv", 1, 1)
    yield c
    c.stop()


def find_coordinator(cluster, key: str, key_type: int) -> None:
    """As a client does first (the first FindCoordinator creates the internal topic)."""
    wait_for(lambda: ask(cluster, FIND, 4, {"key_type": key_type, "coordinator_keys": [key]}).coordinators[0]
               .error_code == 0, f"a coordinator for {key}", seconds=10)


class TV2Client:
    """A transactional producer on transaction version 2, one request at a time."""

    def __init__(self, cluster, tid: str) -> None:
        self.cluster, self.tid = cluster, tid
        find_coordinator(cluster, tid, 1)
        init = ask(cluster, INIT, 4, {"transactional_id": tid, "transaction_timeout": timedelta(seconds=30),
                                      "producer_id": -1, "producer_epoch": -1})
        assert init.error_code == 0
        self.pid, self.epoch, self.seq = init.producer_id, init.producer_epoch, 0

    def produce(self, value: bytes, epoch: int | None = None, version: int = 12) -> ErrorCode:
        epoch = self.epoch if epoch is None else epoch
        batch = encode_batch([SimpleRecord(key=b"k", value=value, timestamp=0)], producer_id=self.pid,
                             producer_epoch=epoch, base_sequence=self.seq, is_transactional=True)
        r = ask(self.cluster, PRODUCE, version, {"transactional_id": self.tid, "acks": -1,
                                            "timeout": timedelta(seconds=10),
                                            "topic_data": [{"name": "tv", "partition_data": [
                                                {"index": 0, "records": batch}]}]})
        error = ErrorCode(r.responses[0].partition_responses[0].error_code)
        self.seq += error == ErrorCode.NONE
        return error

    def commit_offset(self, group: str, offset: int) -> ErrorCode:
        find_coordinator(self.cluster, group, 0)
        r = ask(self.cluster, TXN_COMMIT, 5, {"transactional_id": self.tid, "group_id": group,
                                              "producer_id": self.pid, "producer_epoch": self.epoch,
                                              "generation_id": -1, "member_id": "", "group_instance_id": None,
                                              "topics": [{"name": "tv", "partitions": [
                                                  {"partition_index": 0, "committed_offset": offset,
                                                   "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
        return ErrorCode(r.topics[0].partitions[0].error_code)

    def end(self, commit: bool) -> None:
        r = ask(self.cluster, END, 5, {"transactional_id": self.tid, "producer_id": self.pid,
                                       "producer_epoch": self.epoch, "committed": commit})
        assert r.error_code == 0 and r.producer_id == self.pid
        assert r.producer_epoch == self.epoch + 1  # KIP-890: every transaction ends with a bump
        self.epoch, self.seq = r.producer_epoch, 0


def txn_state(cluster, tid: str):
    return cluster.runtime.call_wait(lambda: cluster.brokers[0].txns.txns[tid])


def test_serve_finalizes_transaction_version_2(cluster):
    versions = ask(cluster, API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert [(f.name, f.max_version_level) for f in versions.finalized_features] == [("transaction.version", 2)]
    top = {k.api_key: k.max_version for k in versions.api_keys}
    assert (top[PRODUCE], top[END], top[TXN_COMMIT]) == (12, 5, 5)


def test_a_version_2_client_and_kafka_python_side_by_side(cluster):
    tv2 = TV2Client(cluster, "tv2-app")
    assert tv2.produce(b"tv2-committed") == ErrorCode.NONE  # no AddPartitionsToTxn: Produce v12 added it
    assert txn_state(cluster, "tv2-app").state == "Ongoing"
    old_epoch = tv2.epoch
    tv2.end(commit=True)
    assert tv2.produce(b"zombie", epoch=old_epoch) in FENCED  # a late write of the ended transaction
    assert tv2.produce(b"tv2-aborted") == ErrorCode.NONE
    tv2.end(commit=False)
    assert tv2.produce(b"tv2-with-offsets") == ErrorCode.NONE
    assert tv2.commit_offset("tv2-group", 42) == ErrorCode.NONE  # no AddOffsetsToTxn: v5 added it
    tv2.end(commit=True)
    assert txn_state(cluster, "tv2-app").tv2

    tv1 = KafkaProducer(bootstrap_servers=cluster.bootstrap, transactional_id="tv1-app")
    tv1.init_transactions()
    tv1.begin_transaction()
    tv1.send("tv", key=b"k", value=b"tv1-committed").get(timeout=10)
    tv1.commit_transaction()
    tv1.close()
    wait_for(lambda: txn_state(cluster, "tv1-app").state == "CompleteCommit", "tv1-app's markers written", seconds=10)
    assert not txn_state(cluster, "tv1-app").tv2

    reader = KafkaConsumer("tv", bootstrap_servers=cluster.bootstrap, isolation_level="read_committed",
                           auto_offset_reset="earliest", consumer_timeout_ms=3000)
    seen = sorted(bytes(r.value) for r in reader)
    reader.close()
    assert seen == [b"tv1-committed", b"tv2-committed", b"tv2-with-offsets"]
    fetched = ask(cluster, FETCH_OFFSETS, 7, {"group_id": "tv2-group", "topics": [
        {"name": "tv", "partition_indexes": [0]}], "require_stable": True})
    assert fetched.topics[0].partitions[0].committed_offset == 42


def test_a_version_1_client_still_must_add_its_partitions(cluster):
    """Below Produce v12 nothing is added for the client: KIP-890 part 1 only verifies, and
    a write to a partition not in the transaction is refused."""
    client = TV2Client(cluster, "tv1-raw")
    assert client.produce(b"unadded", version=11) == ErrorCode.INVALID_TXN_STATE
    assert txn_state(cluster, "tv1-raw").state == "Empty"
