"""Bad bytes on the wire: the codec names what is wrong; the broker answers with an error
or closes that one connection, never crashes, and other clients carry on."""

import random
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import MessageSizeTooLargeError
from kafkaproof.impl.net.codec import (
    SIZE,
    UnsupportedRequest,
    WireError,
    decode_request,
    decode_response,
    encode_request,
)
from kafkaproof.impl.net.gateway import APIS
from kafkaproof.impl.net.server import EmbeddedCluster

MAX_REQUEST = 64 * 1024


def test_codec_round_trips_and_names_bad_bytes():
    frame = encode_request(3, 9, 42, {"topics": [{"name": "t"}], "allow_auto_topic_creation": False})
    req = decode_request(frame[4:])
    assert (req.api_key, req.version, req.correlation_id, req.body.topics[0].name) == (3, 9, 42, "t")
    with pytest.raises(WireError, match="shorter than its header"):
        decode_request(b"\x00\x03")
    with pytest.raises(WireError, match="undecodable"):
        decode_request(frame[4:-3])  # truncated body
    assert decode_request(frame[4:] + b"\x00\x00").trailing == 2  # ignored, as Kafka does
    with pytest.raises(UnsupportedRequest) as e:
        decode_request(struct.pack(">hhi", 999, 0, 7) + b"\x00\x00")
    assert e.value.correlation_id == 7


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EmbeddedCluster(str(tmp_path_factory.mktemp("wire")), brokers=1, port=0,
                        props={"socket.request.max.bytes": str(MAX_REQUEST), "message.max.bytes": "10000"}).start()
    c.create_topic("ok", 1, 1)
    yield c
    c.stop()


def connect(c: EmbeddedCluster) -> socket.socket:
    s = socket.create_connection(c.endpoints[0], timeout=5)
    s.settimeout(5)
    return s


def read_frame(s: socket.socket) -> bytes | None:
    """The next response frame, or None if the broker closed the connection."""
    data = b""
    try:
        while len(data) < 4 or len(data) < 4 + SIZE.unpack_from(data)[0]:
            chunk = s.recv(65536)
            if not chunk:
                return None
            data += chunk
    except ConnectionResetError:
        return None
    return data[4:]


def api_versions_works(c: EmbeddedCluster) -> bool:
    with connect(c) as s:
        s.sendall(encode_request(18, 3, 1, {"client_software_name": "t", "client_software_version": "1"}))
        frame = read_frame(s)
        return frame is not None and decode_response(18, 3, frame).error_code == 0


BAD = {
    "negative size": struct.pack(">i", -5),
    "size above socket.request.max.bytes": struct.pack(">i", MAX_REQUEST + 1) + b"\0" * 100,
    "shorter than a header": struct.pack(">i", 3) + b"\0\0\0",
    "unknown api key": SIZE.pack(8 + 17) + struct.pack(">hhi", 999, 0, 5) + b"\0" * 17,
    "unserved version": encode_request(0, 3, 5, {"acks": 1, "timeout": 1000, "topic_data": []}).replace(
        struct.pack(">hh", 0, 3), struct.pack(">hh", 0, 2), 1),
    "garbage body": struct.pack(">i", 40) + struct.pack(">hhi", 3, 9, 1) + bytes(range(32)),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_frame_closes_only_its_connection(cluster, name):
    bystander = connect(cluster)
    bystander.sendall(encode_request(18, 3, 1, {}))  # a request already in flight elsewhere
    errors = cluster.reactors[0].errors
    with connect(cluster) as s:
        s.sendall(BAD[name])
        assert read_frame(s) is None  # closed, no answer
    assert cluster.reactors[0].errors == errors + 1
    assert read_frame(bystander) is not None
    bystander.close()
    assert api_versions_works(cluster)


def test_a_connection_cut_mid_frame_is_dropped_quietly(cluster):
    with connect(cluster) as s:
        frame = encode_request(3, 9, 1, {"topics": None})
        s.sendall(frame[:len(frame) // 2])
    assert api_versions_works(cluster)


def test_api_versions_of_an_unknown_version_answers_with_the_supported_ones(cluster):
    with connect(cluster) as s:
        s.sendall(SIZE.pack(8 + 2 + 1) + struct.pack(">hhi", 18, 99, 9) + b"\x00\x00" + b"\x00")
        frame = read_frame(s)
    response = decode_response(18, 0, frame)
    assert response.error_code == 35  # UNSUPPORTED_VERSION (KIP-511: the client retries with v0)
    assert {k.api_key: (k.min_version, k.max_version) for k in response.api_keys} == {
        k: (lo, hi) for k, (_, lo, hi) in APIS.items()}


def test_oversized_message_is_refused_and_loses_nothing_else(cluster):
    # not idempotent: kafka-python then treats the refusal as fatal for the whole producer
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all", max_request_size=1 << 20, linger_ms=0,
                      enable_idempotence=False)
    small = p.send("ok", value=b"before").get(10)
    with pytest.raises(MessageSizeTooLargeError):
        p.send("ok", value=b"x" * 20_000).get(10)  # message.max.bytes=10000
    after = p.send("ok", value=b"after").get(10)
    p.close()
    c = KafkaConsumer(bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    c.assign([__import__("kafka").TopicPartition("ok", 0)])
    values = [r.value for r in c]
    c.close()
    assert after.offset == small.offset + 1 and values[-2:] == [b"before", b"after"]


def test_an_unknown_topic_gets_unknown_topic_not_a_crash(cluster):
    with connect(cluster) as s:
        s.sendall(encode_request(3, 9, 3, {"topics": [{"name": "no-such"}], "allow_auto_topic_creation": False}))
        response = decode_response(3, 9, read_frame(s))
    assert [(t.name, t.error_code) for t in response.topics] == [("no-such", 3)]
    with connect(cluster) as s:
        s.sendall(encode_request(3, 9, 3, {"topics": [{"name": "bad/name"}], "allow_auto_topic_creation": True}))
        response = decode_response(3, 9, read_frame(s))
    assert [(t.name, t.error_code) for t in response.topics] == [("bad/name", 17)]  # INVALID_TOPIC_EXCEPTION


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(api=st.sampled_from(sorted(APIS)), body=st.binary(max_size=120), seed=st.integers(0, 2**16))
def test_fuzzed_requests_never_take_the_broker_down(cluster, api, body, seed):
    """Well-framed requests of served APIs and versions with random bodies: the broker
    answers or closes that connection; either way it keeps serving."""
    _, lo, hi = APIS[api]
    version = random.Random(seed).randint(lo, hi)
    frame = struct.pack(">hhi", api, version, seed) + body
    with connect(cluster) as s:
        s.sendall(SIZE.pack(len(frame)) + frame)
        try:
            read_frame(s)
        except TimeoutError:
            pass  # a request that parsed and waits (e.g. a fetch with max_wait): fine
    assert api_versions_works(cluster)


def test_a_fetch_answer_with_records_left_in_their_file_frames_like_one_with_the_bytes(tmp_path):
    from kafkaproof.impl.net.codec import encode_response
    from kafkaproof.impl.storage.disk import FileRegion

    path = tmp_path / "00000000000000000000.log"
    path.write_bytes(b"x" * 10 + b"RECORDS-HERE" + b"y" * 5)
    region = FileRegion(str(path), 10, 12, last_offset=3)

    def values(records):
        return {"responses": [{"topic": "t", "partitions": [{"partition_index": 0, "high_watermark": 4,
                                                             "records": records}]}]}

    for version in (4, 11, 12):  # int32 lengths, then compact (varint) ones
        parts = encode_response(1, version, 9, values(region))
        assert any(isinstance(p, FileRegion) for p in parts)
        joined = b"".join(p.read() if isinstance(p, FileRegion) else p for p in parts)
        assert joined == encode_response(1, version, 9, values(b"RECORDS-HERE"))


def test_consumers_are_answered_with_sendfile(cluster, monkeypatch):
    import kafkaproof.impl.net.reactor as reactor
    calls = []
    real = reactor.os.sendfile
    monkeypatch.setattr(reactor.os, "sendfile", lambda *a: calls.append(a[3]) or real(*a))
    p = KafkaProducer(bootstrap_servers=cluster.bootstrap, linger_ms=0)
    for i in range(20):
        p.send("ok", value=b"zero-copy-%d" % i)
    p.flush(10)
    p.close()
    c = KafkaConsumer(bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000)
    c.assign([__import__("kafka").TopicPartition("ok", 0)])
    values = [r.value for r in c]
    c.close()
    assert [v for v in values if v.startswith(b"zero-copy-")] == [b"zero-copy-%d" % i for i in range(20)]
    assert calls and sum(calls) > 0


def test_bytes_after_a_body_are_ignored_as_kafka_does(cluster):
    """librdkafka 2.x sends Metadata v12 with a field the schema dropped after v10."""
    frame = bytes.fromhex("0003000c00000003000772646b61666b610000000000010000")
    with connect(cluster) as s:
        s.sendall(SIZE.pack(len(frame)) + frame)
        response = decode_response(3, 12, read_frame(s))
    assert [b.node_id for b in response.brokers] == [0] and "ok" in [t.name for t in response.topics]


def test_pipelined_requests_are_answered_in_order(cluster):
    """Clients send up to max.in.flight requests without waiting; answers keep their order
    (the connection is muted while one is handled, the rest wait in its buffer)."""
    with connect(cluster) as s:
        s.sendall(b"".join([encode_request(3, 9, 1, {"topics": [{"name": "ok"}]}), encode_request(18, 3, 2, {}),
                            encode_request(3, 9, 3, {"topics": None})]))
        data = b""
        while len(_frames(data)) < 3:
            chunk = s.recv(65536)
            assert chunk, "closed before three answers"
            data += chunk
    assert [struct.unpack_from(">i", f)[0] for f in _frames(data)] == [1, 2, 3]  # correlation ids


def _frames(data: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos + 4 <= len(data) and pos + 4 + SIZE.unpack_from(data, pos)[0] <= len(data):
        size = SIZE.unpack_from(data, pos)[0]
        out.append(data[pos + 4:pos + 4 + size])
        pos += 4 + size
    return out
