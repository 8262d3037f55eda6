"""TLS for SSL and SASL_SSL listeners (issue 22), with Kafka's ssl.* keys.

Keys and certificates come from PEM files (`ssl.keystore.type=PEM`, KIP-651): Python's ssl
module reads neither JKS nor PKCS12, so those are refused by name rather than guessed at.
A client certificate's subject becomes the principal as Kafka's DefaultKafkaPrincipalBuilder
makes it: `User:` + the distinguished name in RFC 2253 order (X500Principal.getName()).
"""

from __future__ import annotations

import ssl

from kafkaproof.impl.config import ConfigError

TLS_PROTOCOLS = ("SSL", "SASL_SSL")
# RFC 2253's keywords for the attributes X500Principal names; Python's long names.
_RFC2253 = {"commonName": "CN", "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
            "organizationName": "O", "organizationalUnitName": "OU", "streetAddress": "STREET",
            "domainComponent": "DC", "userId": "UID"}


def server_context(settings: tuple | dict) -> ssl.SSLContext:
    """The listener's TLS context from the ssl.* keys; a ConfigError names what is wrong."""
    keys = dict(settings)
    keystore = _pem_file(keys, "keystore")
    if not keystore:
        raise ConfigError("an SSL or SASL_SSL listener needs ssl.keystore.location (its key and certificate"
                          " chain, PEM) and ssl.keystore.type=PEM")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2  # Kafka's ssl.enabled.protocols: TLSv1.2,TLSv1.3
    try:
        ctx.load_cert_chain(keystore, password=keys.get("ssl.key.password") or None)
    except (OSError, ssl.SSLError) as e:
        raise ConfigError(f"ssl.keystore.location={keystore}: cannot load the key and certificate: {e}") from None
    auth = keys.get("ssl.client.auth", "none")
    if auth != "none":
        truststore = _pem_file(keys, "truststore")
        if not truststore:
            raise ConfigError(f"ssl.client.auth={auth} needs ssl.truststore.location (CA certificates, PEM)")
        try:
            ctx.load_verify_locations(truststore)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(f"ssl.truststore.location={truststore}: cannot load it: {e}") from None
        ctx.verify_mode = ssl.CERT_REQUIRED if auth == "required" else ssl.CERT_OPTIONAL
    return ctx


def client_context(settings: tuple | dict) -> ssl.SSLContext:
    """For a broker's own connections to its peers over TLS: it trusts the truststore's CAs
    and shows its keystore's certificate (the peer's listener may require one)."""
    keys = dict(settings)
    truststore = _pem_file(keys, "truststore")
    if not truststore:
        raise ConfigError("links between brokers over TLS need ssl.truststore.location (CA certificates, PEM)")
    ctx = ssl.create_default_context(cafile=truststore)
    ctx.check_hostname = False  # Kafka's ssl.endpoint.identification.algorithm is per client; peers check the CA
    keystore = _pem_file(keys, "keystore")
    if keystore:
        ctx.load_cert_chain(keystore, password=keys.get("ssl.key.password") or None)
    return ctx


def peer_contexts(settings: tuple | dict) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Mutual TLS for the links between broker processes (security.inter.broker.protocol=SSL):
    each side shows its keystore's certificate and requires one its truststore's CAs signed,
    so a peer port answers only the cluster's own processes."""
    keys = {**dict(settings), "ssl.client.auth": "required"}
    if not _pem_file(keys, "truststore"):
        raise ConfigError("security.inter.broker.protocol=SSL needs ssl.truststore.location: peers are"
                          " checked against its CAs")
    server, client = server_context(keys), client_context(keys)
    # No TLS 1.3 session tickets: a link's receiving side never writes, so its sender can
    # watch the socket for the peer's end without reading what the handshake left behind.
    server.num_tickets = 0
    return server, client


def _pem_file(keys: dict, store: str) -> str:
    location = keys.get(f"ssl.{store}.location", "")
    kind = keys.get(f"ssl.{store}.type", "JKS")
    if location and kind != "PEM":
        raise ConfigError(f"ssl.{store}.type={kind}: only PEM files are served (set ssl.{store}.type=PEM;"
                          f" convert a {kind} store with keytool and openssl)")
    return location


def principal(sock: ssl.SSLSocket) -> str:
    """Kafka's principal for a TLS connection: the client certificate's distinguished name,
    or User:ANONYMOUS when it showed none."""
    cert = sock.getpeercert()
    if not cert:
        return "User:ANONYMOUS"
    rdns = [",".join(f"{_RFC2253.get(k, k)}={v}" for k, v in rdn) for rdn in reversed(cert["subject"])]
    return "User:" + ",".join(rdns)


def looks_like_tls(head: bytes) -> bool:
    """A TLS handshake record (content type 22, version 3.x): what a TLS client sends first."""
    return len(head) >= 3 and head[0] == 0x16 and head[1] == 0x03
