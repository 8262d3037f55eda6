"""SASL's server side (impl/net/sasl.py, issue 22) against an independent client:
kafka-python's SCRAM client (RFC 5802) and PLAIN as RFC 4616 writes it. Right passwords
authenticate (and the client checks the server's signature), wrong ones, other nonces
and garbage fail with AuthenticationFailed and nothing else."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.net.sasl.scram import ScramClient
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.net.sasl import AuthenticationFailed, Users, parse_users

JAAS = '''KafkaServer {
  org.apache.kafka.common.security.plain.PlainLoginModule required
  username="admin" password="admin-secret"
  user_admin="admin-secret"
  user_alice="alice \\"quoted\\" secret";
};'''
USERS = Users(parse_users(JAAS))


def scram(mechanism: str, user: str, password: str, users: Users = USERS):
    client, server = ScramClient(user, password, mechanism), users.server(mechanism)
    first = server.step(client.first_message())
    client.process_server_first_message(first)
    final = server.step(client.final_message())
    client.process_server_final_message(final)  # raises unless the server knew the credentials
    return server


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_authenticates_the_right_password_only(mechanism):
    assert scram(mechanism, "alice", 'alice "quoted" secret').principal == "User:alice"
    assert scram(mechanism, "admin", "admin-secret").done
    with pytest.raises(AuthenticationFailed, match="invalid credentials"):
        scram(mechanism, "alice", "wrong")
    with pytest.raises(AuthenticationFailed, match="invalid credentials"):
        scram(mechanism, "mallory", "anything")


def test_scram_refuses_a_replayed_or_altered_final_message():
    client, server = ScramClient("admin", "admin-secret", "SCRAM-SHA-256"), USERS.server("SCRAM-SHA-256")
    client.process_server_first_message(server.step(client.first_message()))
    final = client.final_message()
    other = USERS.server("SCRAM-SHA-256")
    other.step(b"n,,n=admin,r=another")
    with pytest.raises(AuthenticationFailed, match="nonce"):
        other.step(final)  # another exchange's final message
    with pytest.raises(AuthenticationFailed):
        server.step(final.replace(b"c=biws", b"c=eSws"))  # the GS2 header changed
    assert not server.done


def test_plain():
    server = USERS.server("PLAIN")
    assert server.step(b"\x00admin\x00admin-secret") == b"" and server.principal == "User:admin"
    for token in (b"\x00admin\x00wrong", b"\x00nobody\x00", b"admin\x00admin-secret", b"bob\x00admin\x00admin-secret"):
        with pytest.raises(AuthenticationFailed):
            USERS.server("PLAIN").step(token)


@given(st.sampled_from(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]), st.lists(st.binary(max_size=80), max_size=3))
def test_garbage_fails_as_authentication_and_nothing_else(mechanism, tokens):
    server = USERS.server(mechanism)
    try:
        for token in tokens:
            server.step(token)
    except AuthenticationFailed:
        return
    assert not server.done or mechanism == "PLAIN"  # (PLAIN takes one message; garbage cannot be a user's)


def test_users_files_and_mechanisms():
    assert parse_users("# users\nalice = s3cret\nbob=\n") == {"alice": "s3cret", "bob": ""}
    for bad in ("", "# nothing\n", "alice\n", "KafkaServer { PlainLoginModule required; };"):
        with pytest.raises(ConfigError):
            parse_users(bad)
    with pytest.raises(ConfigError, match="GSSAPI"):
        Users({"a": "b"}, ["GSSAPI"])
    with pytest.raises(KeyError):
        Users({"a": "b"}, ["PLAIN"]).server("SCRAM-SHA-256")
