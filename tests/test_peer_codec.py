"""The cluster's own links without pickle (impl/net/peer_codec.py, issue 22): every
message the cluster sends survives the encoding unchanged; nothing but a frame it wrote
decodes; and a real pickle that would run code, sent to a peer port of a running
cluster, closes that connection without running - the cluster goes on serving."""

import pickle
import socket
import struct
import subprocess
import time
from collections import Counter
from dataclasses import make_dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafkaproof.impl.controller.store import ClusterMetadata
from kafkaproof.impl.engine.run import run_one
from kafkaproof.impl.engine.setup import build_setup
from kafkaproof.impl.net.metadata_store import FileMetadataStore
from kafkaproof.impl.net.peer_codec import FrameError, Registry
from kafkaproof.impl.net.peers import FRAME, Hello, Where, codec
from kafkaproof.impl.protocol.messages import PartitionState, TopicPartition


def test_every_message_a_cluster_sends_survives_the_encoding():
    seen, differ = Counter(), []

    def watch(c):
        def check(src, dst, message, now, arrivals, refused):
            seen[type(message).__name__] += 1
            back = codec().decode(codec().encode((src, dst, "data", message)))
            if back != (src, dst, "data", message):
                differ.append(message)
        c.message_watchers.append(check)

    run_one(build_setup(strategy="transactional", seconds=10), 1, watch=watch)  # (a group application too)
    assert differ == []
    # Transactions, groups, replication and the control plane all went through it.
    for name in ("WriteTxnMarkersRequest", "TxnOffsetCommitRequest", "JoinGroupResponse", "FetchResponse",
                 "LeaderAndIsrRequest", "AlterPartitionRequest", "BrokerHeartbeatRequest"):
        assert seen[name] > 0, name
    hello = Hello({"broker-0": Where("10.0.0.1", 1, 2, 9092)})
    assert codec().decode(codec().encode(hello)) == hello


class Boom:
    """Unpickling this runs `touch PATH`: what a pickle-speaking peer port would execute."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (subprocess.call, (["touch", self.path],))


def test_a_pickle_decodes_to_an_error_and_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    payload = pickle.dumps(("a", "b", "data", Boom(str(marker))))
    with pytest.raises(FrameError, match="not a kafkaproof peer frame"):
        codec().decode(payload)
    assert not marker.exists()
    pickle.loads(payload)  # (the payload is real: loading it does run the command)
    assert marker.exists()


@pytest.mark.parametrize("frame,why", [
    (b"KP\x02N", "version 2"), (b"KP\x01O\x00\x00\x00\x04Boom\x00\x00\x00\x00", "unknown type 'Boom'"),
    (b"KP\x01S\x00\x00\x00\x09abc", "ends inside"), (b"KP\x01NN", "after the value"),
    (b"KP\x01Q", "unknown tag"), (b"KP\x01E\x00\x00\x00\x09ErrorCode" + struct.pack(">q", 123456), "ErrorCode"),
    (b"KP\x01O\x00\x00\x00\x0eTopicPartition\x00\x00\x00\x01N", "1 fields; it has 2"),
])
def test_frames_it_did_not_write_are_refused_by_name(frame, why):
    with pytest.raises(FrameError, match=why):
        codec().decode(frame)


def test_an_older_writer_s_record_takes_the_defaults_of_fields_added_since(tmp_path):
    """A metadata file from before ClusterMetadata had its ACLs, written by a release whose
    ClusterMetadata had five fields: read with the field added since taking its default."""
    older = make_dataclass("ClusterMetadata", ["partitions", "broker_epochs", "topic_configs", "next_broker_epoch",
                                               "next_producer_id"])
    (tmp_path / "metadata").write_bytes(Registry([older]).encode((older({}, {}, {}, 4, 7), 3)))
    store = FileMetadataStore(str(tmp_path / "metadata"))
    assert store.read().next_producer_id == 7 and store.read().acls == () and store.controller_epoch == 3
    # (fewer fields than those without defaults is still refused)
    with pytest.raises(FrameError, match="1 fields; it has 2"):
        codec().decode(b"KP\x01O\x00\x00\x00\x0eTopicPartition\x00\x00\x00\x01N")


@given(st.binary(max_size=200))
def test_garbage_is_a_frame_error_never_another_exception(data):
    for raw in (data, b"KP\x01" + data):
        try:
            codec().decode(raw)
        except FrameError:
            pass


def test_unregistered_types_are_not_sent():
    with pytest.raises(FrameError, match="not a type peers exchange"):
        codec().encode(("a", "b", "data", Boom("x")))
    with pytest.raises(ValueError, match="only dataclasses"):
        Registry([int])


def test_the_metadata_file_is_no_pickle_and_an_old_pickle_is_refused(tmp_path):
    path = str(tmp_path / "metadata")
    store = FileMetadataStore(path)
    epoch = store.acquire(0, 0, 1000)
    tp = TopicPartition("t", 0)
    assert store.commit(epoch, lambda d: d.partitions.__setitem__(tp, PartitionState(tp, 0, 1, (0,), (0,), 1)))
    again = FileMetadataStore(path)
    assert again.read().partitions[tp] == store.read().partitions[tp] and again.controller_epoch == epoch
    marker = tmp_path / "ran"
    (tmp_path / "old").write_bytes(pickle.dumps((Boom(str(marker)), 1)))
    with pytest.raises(ValueError, match="a pickle can run code"):
        FileMetadataStore(str(tmp_path / "old"))
    assert not marker.exists()
    assert isinstance(again.read(), ClusterMetadata)


def test_a_pickle_sent_to_a_running_cluster_s_peer_port_runs_nothing(tmp_path):
    from kafka import KafkaConsumer, KafkaProducer

    from kafkaproof.nemesis import ProcessCluster

    cluster = ProcessCluster(tmp_path / "cluster", ["offsets.topic.num.partitions=1"], brokers=1)
    marker = tmp_path / "ran"
    try:
        for payload in (pickle.dumps(("broker-0", "controller-0", "control", Boom(str(marker)))),
                        b"\xde\xad\xbe\xef" * 64):
            with socket.create_connection(("127.0.0.1", cluster.controller.port), timeout=5) as sock:
                sock.sendall(FRAME.pack(len(payload)) + payload)
                sock.settimeout(10)
                assert sock.recv(1) == b""  # the controller closed the connection
        time.sleep(0.5)
        assert not marker.exists()
        log = (tmp_path / "cluster" / "controller.log").read_text()
        assert log.count("dropped a peer connection") == 2 and "not a kafkaproof peer frame" in log
        # Unharmed: the broker still registers through the controller, and serves.
        producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
        producer.send("after-the-pickle", b"still here").get(timeout=30)
        producer.close()
        consumer = KafkaConsumer("after-the-pickle", bootstrap_servers=cluster.bootstrap,
                                 auto_offset_reset="earliest", consumer_timeout_ms=10_000)
        assert [r.value for r in consumer] == [b"still here"]
        consumer.close()
    finally:
        cluster.stop()
