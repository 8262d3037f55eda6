"""`serve` with a SASL_PLAINTEXT listener (issue 22): confluent-kafka (librdkafka) and
kafka-python produce and consume over SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN; a wrong
password, an unknown mechanism and a plaintext client each get Kafka's error or a closed
connection - and the broker goes on serving the others."""

import re
import shutil
import socket
import struct
import subprocess

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka import KafkaError as RdError
from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError as KpError
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.net.codec import encode_request
from kafkaproof.impl.net.server import EmbeddedCluster

USERS = {"alice": "alice-secret", "bob": "bob-secret"}
SASL = {"listeners": "SASL_PLAINTEXT://:9092", "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "offsets.topic.num.partitions": "1", "offsets.topic.replication.factor": "1",
        "group.initial.rebalance.delay.ms": "0"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = EmbeddedCluster(str(tmp_path_factory.mktemp("sasl")), brokers=1, port=0, props=SASL, users=USERS)
    c.start()
    yield c
    c.stop()


def rd(cluster, mechanism: str, password: str = "alice-secret", **extra) -> dict:
    return {"bootstrap.servers": cluster.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": "alice", "sasl.password": password, **extra}


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-512", "PLAIN"])
def test_librdkafka_produces_and_consumes_over_sasl(cluster, mechanism):
    topic = f"rd-{mechanism.lower()}"
    p = Producer(rd(cluster, mechanism, acks="all"))
    for i in range(5):
        p.produce(topic, f"v{i}".encode())
    assert p.flush(30) == 0
    c = Consumer(rd(cluster, mechanism, **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    for _ in range(60):
        m = c.poll(1.0)
        if m is not None and m.error() is None:
            got.append(m.value())
        if len(got) == 5:
            break
    c.close()
    assert got == [f"v{i}".encode() for i in range(5)]


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "PLAIN"])
def test_kafka_python_produces_and_consumes_over_sasl(cluster, mechanism):
    topic = f"kp-{mechanism.lower()}"
    auth = {"bootstrap_servers": cluster.bootstrap, "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": mechanism, "sasl_plain_username": "bob", "sasl_plain_password": "bob-secret"}
    producer = KafkaProducer(acks="all", **auth)
    producer.send(topic, b"hello").get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", **auth)
    got = []
    for _ in range(30):
        got += [r.value for records in consumer.poll(1000).values() for r in records]
        if got:
            break
    consumer.close()
    assert got == [b"hello"]


def test_a_wrong_password_is_sasl_authentication_failed(cluster):
    errors = []
    p = Producer(rd(cluster, "SCRAM-SHA-256", password="wrong", error_cb=errors.append))
    p.produce("denied", b"x")
    for _ in range(50):
        p.poll(0.1)
        if errors:
            break
    assert any(e.code() == RdError._AUTHENTICATION and "Authentication failed" in e.str() for e in errors), errors
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, security_protocol="SASL_PLAINTEXT", api_version=(3, 0),
                             sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password="nope",
                             max_block_ms=2000)
    with pytest.raises(KpError):
        producer.send("denied", b"x").get(timeout=5)
    producer.close(0)
    assert cluster.reactors[0].errors >= 2  # both connections closed by the broker


def raw(cluster, *requests: tuple[int, int, dict]) -> list[bytes]:
    """Send requests on one connection; the response frames (b"" once the broker closed)."""
    host, port = cluster.bootstrap.split(":")
    out = []
    with socket.create_connection((host, int(port)), timeout=10) as s:
        for i, (api, version, body) in enumerate(requests):
            try:
                s.sendall(encode_request(api, version, i + 1, body))
                head = s.recv(4)
            except ConnectionResetError:  # (closed by the broker)
                head = b""
            if len(head) < 4:
                out.append(b"")
                break
            (size,) = struct.unpack(">i", head)
            data = b""
            while len(data) < size:
                data += s.recv(size - len(data))
            out.append(data)
    return out


def test_an_unknown_mechanism_and_a_plaintext_client_are_refused_and_the_broker_goes_on(cluster):
    # SaslHandshake v1 for GSSAPI: UNSUPPORTED_SASL_MECHANISM (33) with what is enabled, then closed.
    answers = raw(cluster, (17, 1, {"mechanism": "GSSAPI"}), (18, 3, {}))
    assert struct.unpack_from(">h", answers[0], 4)[0] == 33 and b"SCRAM-SHA-512" in answers[0]
    assert answers[1:] == [b""]
    # Metadata before authenticating: the connection closes without an answer.
    assert raw(cluster, (3, 12, {"topics": None})) == [b""]
    # ApiVersions is answered before authentication (clients ask it first).
    assert len(raw(cluster, (18, 3, {}))[0]) > 20
    test_librdkafka_produces_and_consumes_over_sasl(cluster, "SCRAM-SHA-512")  # unharmed


def test_a_sasl_listener_needs_users_and_served_mechanisms(tmp_path):
    with pytest.raises(ConfigError, match="needs its users"):
        EmbeddedCluster(str(tmp_path / "a"), port=0, props=SASL)
    with pytest.raises(ConfigError, match="GSSAPI"):
        EmbeddedCluster(str(tmp_path / "b"), port=0, props={"listeners": "SASL_PLAINTEXT://:0"}, users=USERS)


def librdkafka_of_kcat() -> tuple[int, ...]:
    out = subprocess.run(["kcat", "-V"], capture_output=True, text=True).stdout
    found = re.search(r"librdkafka version ([0-9.]+)", out)
    return tuple(int(x) for x in found.group(1).split(".")) if found else (0,)


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (Debian package kcat; CI installs it)")
def test_kcat_over_plain_and_scram_as_against_kafka_4(cluster, caplog, kcat_scram_env):
    def kcat(mechanism: str, password: str, *args, **kw):
        return subprocess.run(["kcat", "-b", cluster.bootstrap, "-X", "security.protocol=SASL_PLAINTEXT", "-X",
                               f"sasl.mechanism={mechanism}", "-X", "sasl.username=alice", "-X",
                               f"sasl.password={password}", *args], capture_output=True, text=True, timeout=30, **kw)

    assert kcat("PLAIN", "alice-secret", "-P", "-t", "kcat-sasl", input="one\ntwo\n").returncode == 0
    out = kcat("PLAIN", "alice-secret", "-C", "-t", "kcat-sasl", "-e", "-q")
    assert out.returncode == 0 and out.stdout.split() == ["one", "two"]
    assert "Authentication failed" in kcat("PLAIN", "nope", "-L", "-m", "3").stderr
    # librdkafka before 2.6.1 repeats the client nonce in SCRAM's final message; Kafka 4
    # checks it strictly (RFC 5802; CVE-2024-56128) and refuses them, and so does serve.
    scram = kcat("SCRAM-SHA-256", "alice-secret", "-L", "-m", "3")
    if librdkafka_of_kcat() < (2, 6, 1):
        assert scram.returncode != 0 and "the final message's nonce is not this exchange's" in caplog.text
    else:
        assert scram.returncode == 0, scram.stderr
    # The same kcat on a current librdkafka (the confluent-kafka wheel's) produces and
    # consumes over SCRAM-SHA-256 and SCRAM-SHA-512.
    for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
        topic = f"kcat-{mechanism.lower()}"
        assert kcat(mechanism, "alice-secret", "-P", "-t", topic, input="s1\ns2\n", env=kcat_scram_env).returncode == 0
        out = kcat(mechanism, "alice-secret", "-C", "-t", topic, "-e", "-q", env=kcat_scram_env)
        assert out.returncode == 0 and out.stdout.split() == ["s1", "s2"], out.stderr
