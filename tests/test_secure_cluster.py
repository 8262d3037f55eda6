"""A cluster secured end to end (issue 22), as the README's two-host setup runs it, here on
one host: three broker processes on ZooKeeper, clients on SASL_SSL with SCRAM-SHA-512, the
links between brokers mutual TLS (security.inter.broker.protocol=SSL). A replicated write
crosses those links; a peer port refuses a process without the cluster's certificate, a
plaintext peer and a pickle, and the cluster goes on."""

import json
import pickle
import re
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest
import trustme
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from test_serve_tls import _until_closed
from test_zookeeper import client, wait_registered

from kafkaproof.nemesis import ProcessCluster

USERS = "admin=admin-secret\nalice=alice-secret\n"


class Boom:
    """Unpickling this runs `touch PATH`: proof that a peer port never unpickles."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.path}",)


@pytest.fixture
def secure_cluster(zookeeper, tmp_path):
    ca = trustme.CA(organization_name="kafkaproof-test")
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    # one certificate for the brokers (as one per host would be, signed by the same CA)
    ca.issue_cert("127.0.0.1", "localhost", common_name="broker").private_key_and_cert_chain_pem.write_to_path(
        str(tmp_path / "broker.pem"))
    (tmp_path / "users").write_text(USERS)
    settings = ["listeners=SASL_SSL://:9093,INTERNAL://:0",
                "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,SSL:SSL",
                "sasl.enabled.mechanisms=SCRAM-SHA-512",
                "ssl.keystore.type=PEM", f"ssl.keystore.location={tmp_path / 'broker.pem'}",
                "ssl.truststore.type=PEM", f"ssl.truststore.location={tmp_path / 'ca.pem'}",
                "security.inter.broker.protocol=SSL", "default.replication.factor=3", "min.insync.replicas=2",
                "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users=User:admin",
                "offsets.topic.replication.factor=3", "offsets.topic.num.partitions=1",
                "group.initial.rebalance.delay.ms=0"]
    cluster = ProcessCluster(tmp_path, settings, 3, zookeeper=zookeeper, args=["--users", str(tmp_path / "users")])
    yield cluster, ca, tmp_path
    cluster.stop()


def conf(cluster, tmp_path, **extra) -> dict:
    return {"bootstrap.servers": cluster.bootstrap, "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(tmp_path / "ca.pem"), "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "admin", "sasl.password": "admin-secret", **extra}


def replicated_round_trip(cluster, tmp_path, topic: str) -> list[bytes]:
    """acks=all to a topic of 3 replicas (min ISR 2): acknowledged only once followers
    fetched it over the peer links."""
    p = Producer(conf(cluster, tmp_path, acks="all"))
    for i in range(5):
        p.produce(topic, f"{topic}-{i}".encode())
    assert p.flush(60) == 0
    c = Consumer(conf(cluster, tmp_path, **{"group.id": f"g-{topic}", "auto.offset.reset": "earliest"}))
    c.subscribe([topic])
    got = []
    for _ in range(60):
        got += [m.value() for m in c.consume(5, 1.0) if m.error() is None]
        if len(got) >= 5:
            break
    c.close()
    return got


def test_clients_on_sasl_ssl_and_peers_on_mutual_tls_and_a_peer_port_refuses_strangers(secure_cluster, zookeeper):
    cluster, ca, tmp_path = secure_cluster
    zk = client(zookeeper)
    wait_registered(zk, 3)  # (their heartbeats reached the controller over TLS)
    peer = json.loads(zk.get("/brokers/ids/1")[0])["kafkaproof"]["control_port"]
    registered = {b: json.loads(zk.get(f"/brokers/ids/{b}")[0])["endpoints"] for b in range(3)}
    zk.stop()
    # Two listeners per broker, registered as Kafka registers them; a client on INTERNAL
    # (plaintext, inside) is told every broker's INTERNAL address, learnt across processes.
    internal = sorted(e.removeprefix("INTERNAL://") for es in registered.values() for e in es
                      if e.startswith("INTERNAL://"))
    assert len(internal) == 3 and all(es[0].startswith("SASL_SSL://") for es in registered.values())
    inside = AdminClient({"bootstrap.servers": internal[0]})
    assert sorted(f"{b.host}:{b.port}" for b in inside.list_topics(timeout=10).brokers.values()) == internal
    admin = AdminClient(conf(cluster, tmp_path))
    for f in admin.create_topics([NewTopic("orders", 1, 3)]).values():
        f.result(30)
    assert replicated_round_trip(cluster, tmp_path, "orders") == [f"orders-{i}".encode() for i in range(5)]

    marker = tmp_path / "ran"
    payload = pickle.dumps(Boom(str(marker)))
    # 1. plaintext: a pickle where a TLS ClientHello belongs - the handshake fails, nothing is read
    with socket.create_connection(("127.0.0.1", peer), timeout=10) as s:
        s.sendall(struct.pack(">I", len(payload)) + payload)
        assert _until_closed(s)[:1] in (b"", b"\x15")  # closed (after a TLS alert at most)
    # 2. TLS without the cluster's certificate: the peer requires one
    stranger = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    stranger.check_hostname = False
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with stranger.wrap_socket(socket.create_connection(("127.0.0.1", peer), timeout=10)) as s:
            s.sendall(struct.pack(">I", len(payload)) + payload)
            if not s.recv(1):  # (TLS 1.3 reports the refused certificate on the first read)
                raise ConnectionError("closed")
    # 3. a certificate from another CA
    other = trustme.CA().issue_cert("127.0.0.1")
    other.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "other.pem"))
    stranger.load_cert_chain(str(tmp_path / "other.pem"))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with stranger.wrap_socket(socket.create_connection(("127.0.0.1", peer), timeout=10)) as s:
            s.sendall(struct.pack(">I", len(payload)) + payload)
            if not s.recv(1):
                raise ConnectionError("closed")
    assert not marker.exists()
    for _ in range(50):  # (the broker logs as its handshake ends; the client may be faster)
        log = (tmp_path / "broker-1.log").read_text()
        if log.count("refused a peer connection: TLS handshake failed") >= 3:
            break
        time.sleep(0.1)
    assert "(WRONG_VERSION_NUMBER)" in log and "(PEER_DID_NOT_RETURN_A_CERTIFICATE)" in log
    assert log.count("refused a peer connection: TLS handshake failed") == 3, log[-2000:]
    # The cluster goes on: another replicated round trip over the same links.
    assert replicated_round_trip(cluster, tmp_path, "after") == [f"after-{i}".encode() for i in range(5)]
    assert all(cluster.alive(b) for b in range(3))


def test_the_readme_s_two_host_client_runs(secure_cluster, zookeeper, monkeypatch, capsys):
    """The README's client for its two-host setup, pointed at this cluster: admin makes the
    topic and grants alice WRITE; alice's acks=all write is acknowledged (she is no super
    user: without the grant it is TOPIC_AUTHORIZATION_FAILED)."""
    cluster, _, tmp_path = secure_cluster
    zk = client(zookeeper)
    wait_registered(zk, 3)
    zk.stop()
    text = (Path(__file__).parent.parent / "README.md").read_text()
    [code] = re.findall(r"```py\n(from confluent_kafka import Producer.*?)```", text, re.S)
    assert '"10.0.0.1:9093,10.0.0.2:9093"' in code
    monkeypatch.chdir(tmp_path)  # (its ca.pem)
    exec(compile(code.replace("10.0.0.1:9093,10.0.0.2:9093", cluster.bootstrap), "README.md", "exec"), {})
    assert capsys.readouterr().out.strip().splitlines()[-1] == "written"

