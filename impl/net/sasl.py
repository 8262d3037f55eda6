"""SASL on a connection, the server's side (issue 22): PLAIN (RFC 4616) and
SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677; Kafka's KIP-84), as Kafka's
SaslHandshake (KIP-43) and SaslAuthenticate (KIP-152) requests carry them.

Users come from Kafka's JAAS text (`PlainLoginModule required user_alice="secret";`, as
in `listener.name.sasl_plaintext.plain.sasl.jaas.config`) or from properties lines
(`alice=secret`). SCRAM keeps only what Kafka's credential store keeps - salt, iteration
count, StoredKey, ServerKey - and never compares a password: the client proves it knows
one. A failed exchange raises AuthenticationFailed (Kafka's SASL_AUTHENTICATION_FAILED),
whatever the client sent; the connection is then closed. Not wired into `serve` yet.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from kafkaproof.impl.config import ConfigError

SCRAM_HASHES = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}
MECHANISMS = ("PLAIN", *SCRAM_HASHES)
ITERATIONS = 4096  # Kafka's default for kafka-configs --add-config 'SCRAM-SHA-256=[password=...]'
_JAAS_USER = re.compile(r'\buser_([^\s=]+)\s*=\s*"((?:[^"\\]|\\.)*)"')


class AuthenticationFailed(Exception):
    """The client did not authenticate (SASL_AUTHENTICATION_FAILED); the message says why."""


def parse_users(text: str, where: str = "users") -> dict[str, str]:
    """user -> password, from JAAS (`user_NAME="PASSWORD"` options of a login module) or
    from `NAME=PASSWORD` lines (# comments). An empty or unreadable list is a ConfigError."""
    if "LoginModule" in text:
        users = {name: password.replace('\\"', '"') for name, password in _JAAS_USER.findall(text)}
    else:
        users = {}
        for n, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith(("#", "!")):
                continue
            name, sep, password = line.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"{where}, line {n}: expected NAME=PASSWORD, got {line!r}")
            users[name.strip()] = password.strip()
    if not users:
        raise ConfigError(f"{where}: no users (JAAS user_NAME=\"PASSWORD\" options, or NAME=PASSWORD lines)")
    return users


@dataclass(frozen=True)
class ScramCredential:
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    @classmethod
    def of(cls, password: str, mechanism: str, salt: bytes | None = None, iterations: int = ITERATIONS):
        h = SCRAM_HASHES[mechanism]
        salt = salt if salt is not None else secrets.token_bytes(32)
        salted = hashlib.pbkdf2_hmac(h().name, password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", h).digest()
        return cls(salt, iterations, h(client_key).digest(), hmac.new(salted, b"Server Key", h).digest())


class Plain:
    """RFC 4616: one message, [authzid] NUL authcid NUL password."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self.principal: str | None = None

    def step(self, token: bytes) -> bytes:
        parts = token.split(b"\x00")
        if len(parts) != 3:
            raise AuthenticationFailed("PLAIN: expected authzid NUL user NUL password")
        try:
            authzid, user, password = (p.decode() for p in parts)
        except UnicodeDecodeError:
            raise AuthenticationFailed("PLAIN: not UTF-8") from None
        if authzid and authzid != user:
            raise AuthenticationFailed("PLAIN: an authorization id other than the user")
        expected = self.users.get(user)
        same = hmac.compare_digest(password.encode(), (expected or "").encode())  # (in constant time)
        if expected is None or not same:
            raise AuthenticationFailed("Authentication failed: invalid credentials with SASL mechanism PLAIN")
        self.principal = f"User:{user}"
        return b""

    @property
    def done(self) -> bool:
        return self.principal is not None


class Scram:
    """RFC 5802 for one connection: client-first -> server-first, client-final -> server-final."""

    def __init__(self, mechanism: str, credentials: dict[str, ScramCredential]) -> None:
        self.mechanism, self.hash = mechanism, SCRAM_HASHES[mechanism]
        self.credentials = credentials
        self.principal: str | None = None
        self._sent_first: str | None = None

    def step(self, token: bytes) -> bytes:
        try:
            text = token.decode()
        except UnicodeDecodeError:
            raise AuthenticationFailed(f"{self.mechanism}: not UTF-8") from None
        return self._first(text) if self._sent_first is None else self._final(text)

    @property
    def done(self) -> bool:
        return self.principal is not None

    def _first(self, text: str) -> bytes:
        gs2, _, bare = _split_gs2(text)
        if gs2.startswith("p="):
            raise AuthenticationFailed(f"{self.mechanism}: channel binding is not supported")
        attrs = _attributes(bare)
        if "m" in attrs or "n" not in attrs or "r" not in attrs or not attrs["r"]:
            raise AuthenticationFailed(f"{self.mechanism}: a client-first message needs n= and r= (and no m=)")
        user = attrs["n"].replace("=2C", ",").replace("=3D", "=")
        credential = self.credentials.get(user)
        if credential is None:
            raise AuthenticationFailed(f"Authentication failed during authentication due to invalid credentials"
                                       f" with SASL mechanism {self.mechanism}")
        self._user, self._credential, self._gs2 = user, credential, gs2
        self._nonce = attrs["r"] + secrets.token_urlsafe(18)
        self._client_first_bare = bare
        self._sent_first = (f"r={self._nonce},s={base64.b64encode(credential.salt).decode()},"
                            f"i={credential.iterations}")
        return self._sent_first.encode()

    def _final(self, text: str) -> bytes:
        if self.done:
            raise AuthenticationFailed(f"{self.mechanism}: the exchange is over")
        without_proof, sep, proof = text.rpartition(",p=")
        attrs = _attributes(without_proof)
        if not sep or attrs.get("r") != self._nonce:
            raise AuthenticationFailed(f"{self.mechanism}: the final message's nonce is not this exchange's")
        if attrs.get("c") != base64.b64encode(self._gs2.encode()).decode():
            raise AuthenticationFailed(f"{self.mechanism}: the channel-binding header changed")
        try:
            client_proof = base64.b64decode(proof, validate=True)
        except ValueError:
            raise AuthenticationFailed(f"{self.mechanism}: the proof is not base64") from None
        auth_message = f"{self._client_first_bare},{self._sent_first},{without_proof}".encode()
        c = self._credential
        signature = hmac.new(c.stored_key, auth_message, self.hash).digest()
        client_key = bytes(a ^ b for a, b in zip(client_proof, signature, strict=False))
        if len(client_proof) != len(signature) or not hmac.compare_digest(self.hash(client_key).digest(),
                                                                          c.stored_key):
            raise AuthenticationFailed(f"Authentication failed during authentication due to invalid credentials"
                                       f" with SASL mechanism {self.mechanism}")
        self.principal = f"User:{self._user}"
        return b"v=" + base64.b64encode(hmac.new(c.server_key, auth_message, self.hash).digest())


def _split_gs2(text: str) -> tuple[str, str, str]:
    """("n" | "y" | "p=...", authzid, client-first-bare)."""
    parts = text.split(",", 2)
    if len(parts) != 3 or parts[0] not in ("n", "y") and not parts[0].startswith("p="):
        raise AuthenticationFailed("SCRAM: a client-first message starts with a GS2 header (n,,)")
    return f"{parts[0]},{parts[1]},", parts[1], parts[2]


def _attributes(text: str) -> dict[str, str]:
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or len(key) != 1:
            raise AuthenticationFailed(f"SCRAM: {item!r} is not an attribute")
        out[key] = value
    return out


class Users:
    """Everything a listener authenticates against: passwords for PLAIN, and for each
    SCRAM mechanism the credentials derived from them (as Kafka's store keeps them)."""

    def __init__(self, users: dict[str, str], mechanisms=MECHANISMS) -> None:
        unknown = [m for m in mechanisms if m not in MECHANISMS]
        if unknown:
            raise ConfigError(f"sasl.enabled.mechanisms: {', '.join(unknown)} not supported (supported:"
                              f" {', '.join(MECHANISMS)})")
        self.mechanisms = tuple(mechanisms)
        self.passwords = dict(users)
        self.scram = {m: {u: ScramCredential.of(p, m) for u, p in users.items()} for m in mechanisms if m in SCRAM_HASHES}

    def server(self, mechanism: str) -> Plain | Scram:
        """A new exchange (SaslHandshake named the mechanism); KeyError if it is not enabled."""
        if mechanism not in self.mechanisms:
            raise KeyError(mechanism)
        return Plain(self.passwords) if mechanism == "PLAIN" else Scram(mechanism, self.scram[mechanism])
