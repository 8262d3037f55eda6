"""`serve` with TLS listeners (issue 22): SSL with client certificates, and SASL_SSL with
SCRAM. confluent-kafka (librdkafka), kafka-python and kcat produce and consume over each;
plaintext spoken to a TLS port, TLS to a plaintext port and a missing client certificate
close only their own connection, and the broker goes on serving."""

import shutil
import socket
import ssl
import subprocess

import pytest
import trustme
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.net.codec import encode_request
from kafkaproof.impl.net.server import EmbeddedCluster

GROUPS = {"offsets.topic.num.partitions": "1", "offsets.topic.replication.factor": "1",
          "group.initial.rebalance.delay.ms": "0"}
USERS = {"alice": "alice-secret"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A throwaway CA; the broker's certificate for 127.0.0.1, and alice's client certificate."""
    d = tmp_path_factory.mktemp("pki")
    ca = trustme.CA(organization_name="kafkaproof-test")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(d / "broker.pem"))
    alice = ca.issue_cert("alice@example.com", common_name="alice", organization_name="kafkaproof-test")
    alice.cert_chain_pems[0].write_to_path(str(d / "alice.crt"))
    alice.private_key_pem.write_to_path(str(d / "alice.key"))
    return d


def tls_props(pki, listener: str, **extra) -> dict:
    return {"listeners": f"{listener}://:9093", "ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki / "broker.pem"),
            "ssl.truststore.type": "PEM", "ssl.truststore.location": str(pki / "ca.pem"), **GROUPS, **extra}


@pytest.fixture(scope="module")
def ssl_cluster(pki, tmp_path_factory):
    with EmbeddedCluster(str(tmp_path_factory.mktemp("ssl")), port=0,
                         props=tls_props(pki, "SSL", **{"ssl.client.auth": "required"})) as c:
        yield c


@pytest.fixture(scope="module")
def sasl_ssl_cluster(pki, tmp_path_factory):
    props = tls_props(pki, "SASL_SSL", **{"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"})
    with EmbeddedCluster(str(tmp_path_factory.mktemp("sasl-ssl")), port=0, props=props, users=USERS) as c:
        yield c


def rd_conf(cluster, pki, protocol: str) -> dict:
    conf = {"bootstrap.servers": cluster.bootstrap, "security.protocol": protocol, "ssl.ca.location": str(pki / "ca.pem")}
    if protocol == "SSL":
        return {**conf, "ssl.certificate.location": str(pki / "alice.crt"), "ssl.key.location": str(pki / "alice.key")}
    return {**conf, "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-secret"}


def kp_conf(cluster, pki, protocol: str) -> dict:
    conf = {"bootstrap_servers": cluster.bootstrap, "security_protocol": protocol, "ssl_cafile": str(pki / "ca.pem")}
    if protocol == "SSL":
        return {**conf, "ssl_certfile": str(pki / "alice.crt"), "ssl_keyfile": str(pki / "alice.key")}
    return {**conf, "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "alice",
            "sasl_plain_password": "alice-secret"}


def consume_rd(conf: dict, topic: str, n: int) -> list[bytes]:
    c = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got = []
    for _ in range(60):
        got += [m.value() for m in c.consume(n - len(got), 1.0) if m.error() is None]
        if len(got) >= n:
            break
    c.close()
    return got


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_librdkafka_produces_and_consumes_over_tls(request, pki, protocol):
    cluster = request.getfixturevalue("ssl_cluster" if protocol == "SSL" else "sasl_ssl_cluster")
    conf = rd_conf(cluster, pki, protocol)
    topic = f"rd-{protocol.lower()}"
    p = Producer({**conf, "acks": "all"})
    # (larger than one TLS record: fetches answered from segment files go through the
    # encryption, not sendfile)
    values = [f"{i}:".encode() + bytes(40_000) for i in range(20)]
    for v in values:
        p.produce(topic, v)
    assert p.flush(30) == 0
    assert consume_rd(conf, topic, len(values)) == values


@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_kafka_python_produces_and_consumes_over_tls(request, pki, protocol):
    cluster = request.getfixturevalue("ssl_cluster" if protocol == "SSL" else "sasl_ssl_cluster")
    conf = kp_conf(cluster, pki, protocol)
    topic = f"kp-{protocol.lower()}"
    producer = KafkaProducer(acks="all", **conf)
    for i in range(3):
        producer.send(topic, f"m{i}".encode()).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", **conf)
    got = []
    for _ in range(30):
        got += [r.value for records in consumer.poll(1000).values() for r in records]
        if len(got) == 3:
            break
    consumer.close()
    assert got == [b"m0", b"m1", b"m2"]


def test_a_client_certificate_is_the_principal(ssl_cluster, pki):
    """Kafka's DefaultKafkaPrincipalBuilder: User: and the subject as X500Principal.getName()
    writes it (RFC 2253, most specific first) - here as OpenSSL's RFC 2253 printer does."""
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "alice.crt"), str(pki / "alice.key"))
    host, port = ssl_cluster.bootstrap.split(":")
    with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host) as s:
        s.sendall(encode_request(18, 3, 1, {}))
        assert len(s.recv(4)) == 4
        principals = {c.principal for p in ssl_cluster.reactors[0].processors for c in p.conns}
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in",
                              str(pki / "alice.crt")], capture_output=True, text=True, check=True).stdout
    assert subject.startswith("subject=CN=alice,OU=")
    assert principals == {"User:" + subject.removeprefix("subject=").strip()}


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (Debian package kcat; CI installs it)")
@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_kcat_produces_and_consumes_over_tls(request, pki, protocol, kcat_scram_env):
    cluster = request.getfixturevalue("ssl_cluster" if protocol == "SSL" else "sasl_ssl_cluster")
    opts = {"security.protocol": protocol.lower(), "ssl.ca.location": pki / "ca.pem"}
    if protocol == "SSL":
        opts |= {"ssl.certificate.location": pki / "alice.crt", "ssl.key.location": pki / "alice.key"}
    else:  # (SCRAM on a current librdkafka: Debian's kcat's own repeats the nonce - test_serve_sasl.py)
        opts |= {"sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "alice", "sasl.password": "alice-secret"}
    args = [a for k, v in opts.items() for a in ("-X", f"{k}={v}")]

    def kcat(*more, **kw):
        return subprocess.run(["kcat", "-b", cluster.bootstrap, *args, *more], capture_output=True, text=True,
                              timeout=30, env=kcat_scram_env, **kw)

    topic = f"kcat-{protocol.lower()}"
    assert kcat("-P", "-t", topic, input="one\ntwo\n").returncode == 0
    out = kcat("-C", "-t", topic, "-e", "-q")
    assert out.returncode == 0 and out.stdout.split() == ["one", "two"], out.stderr


def test_plaintext_to_a_tls_port_and_no_client_certificate_are_refused_and_the_broker_goes_on(ssl_cluster, pki):
    host, port = ssl_cluster.bootstrap.split(":")
    before = ssl_cluster.reactors[0].errors
    with socket.create_connection((host, int(port)), timeout=10) as s:  # a plaintext ApiVersions
        s.sendall(encode_request(18, 3, 1, {}))
        answer = _until_closed(s)
    assert answer == b"" or answer[0] == 0x15, answer  # a TLS alert at most, never a Kafka answer
    # Required client authentication: a client without a certificate is cut off.
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host) as s:
            s.sendall(encode_request(18, 3, 1, {}))
            if not s.recv(4):  # TLS 1.3 reports the refused certificate on the first read
                raise ConnectionError("closed")
    assert ssl_cluster.reactors[0].errors >= before + 2
    conf = rd_conf(ssl_cluster, pki, "SSL")
    p = Producer(conf)
    p.produce("after-bad-input", b"still here")
    assert p.flush(30) == 0 and consume_rd(conf, "after-bad-input", 1) == [b"still here"]


def test_tls_to_a_plaintext_port_is_refused_with_a_clear_error(tmp_path, pki, caplog):
    with EmbeddedCluster(str(tmp_path), port=0, props=GROUPS) as plain:
        host, port = plain.bootstrap.split(":")
        ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, ConnectionError)):
            ctx.wrap_socket(socket.create_connection((host, int(port)), timeout=10), server_hostname=host)
        assert plain.reactors[0].errors == 1
        assert "a TLS handshake on a PLAINTEXT listener" in caplog.text
        p = Producer({"bootstrap.servers": plain.bootstrap})
        p.produce("t", b"x")
        assert p.flush(30) == 0


def test_tls_settings_are_checked_at_start(tmp_path, pki):
    with pytest.raises(ConfigError, match="ssl.keystore.location"):
        EmbeddedCluster(str(tmp_path / "a"), port=0, props={"listeners": "SSL://:9093"})
    with pytest.raises(ConfigError, match="only PEM files"):
        EmbeddedCluster(str(tmp_path / "b"), port=0, props={"listeners": "SSL://:9093",
                                                           "ssl.keystore.location": str(pki / "broker.pem")})
    with pytest.raises(ConfigError, match="cannot load"):
        EmbeddedCluster(str(tmp_path / "c"), port=0, props=tls_props(pki, "SSL", **{
            "ssl.keystore.location": str(pki / "ca.pem")}))  # a certificate without its key
    with pytest.raises(ConfigError, match="ssl.client.auth=required needs ssl.truststore.location"):
        EmbeddedCluster(str(tmp_path / "d"), port=0, props={
            "listeners": "SSL://:9093", "ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki / "broker.pem"),
            "ssl.client.auth": "required"})


def _until_closed(s: socket.socket) -> bytes:
    """What the broker sent before it closed the connection (a timeout fails the test)."""
    got = b""
    try:
        while chunk := s.recv(4096):
            got += chunk
    except ConnectionResetError:
        pass
    return got


def test_two_listeners_each_with_its_protocol_and_its_own_addresses(tmp_path, pki):
    """Kafka's `listeners` with two names: EXTERNAL (SASL_SSL) and INTERNAL (PLAINTEXT) on
    each of two brokers. A client is told the brokers' addresses on the listener it came in
    by, and each listener speaks only its own protocol."""
    props = tls_props(pki, "EXTERNAL", **{
        "listeners": "EXTERNAL://:9093,INTERNAL://:9094",
        "listener.security.protocol.map": "EXTERNAL:SASL_SSL,INTERNAL:PLAINTEXT",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512"})
    with EmbeddedCluster(str(tmp_path), brokers=2, port=0, props=props, users=USERS) as c:
        external, internal = c.bootstrap_of("external"), c.bootstrap_of("internal")
        assert external == c.bootstrap and set(external.split(",")).isdisjoint(internal.split(","))
        secured = {**rd_conf(c, pki, "SASL_SSL"), "bootstrap.servers": external}
        for conf, listener in ((secured, external), ({"bootstrap.servers": internal}, internal)):
            admin = AdminClient(conf)
            brokers = admin.list_topics(timeout=10).brokers
            assert sorted(f"{b.host}:{b.port}" for b in brokers.values()) == sorted(listener.split(","))
        p = Producer({"bootstrap.servers": internal, "acks": "all"})
        p.produce("two-listeners", b"inside")
        assert p.flush(30) == 0
        assert consume_rd(secured, "two-listeners", 1) == [b"inside"]  # the same log, read from outside
        host, port = internal.split(",")[0].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(encode_request(18, 3, 1, {}))  # plaintext ApiVersions: answered on INTERNAL
            assert len(s.recv(4)) == 4
    with pytest.raises(ConfigError, match="INTERNAL twice"):
        EmbeddedCluster(str(tmp_path / "b"), port=0, props={"listeners": "INTERNAL://:1,INTERNAL://:2",
                                                           "listener.security.protocol.map": "INTERNAL:PLAINTEXT"})
