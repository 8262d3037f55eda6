"""Kafka's Reactor request model (the seed's "Reactor 模式"), one per broker listener.

- an acceptor thread accepts connections and hands them round-robin to
- `num.network.threads` processor threads, each with its own selector: they read
  size-prefixed frames into one shared request queue (`queued.max.requests`; when it
  is full a processor stops reading) and write the responses from their own response
  queue. A connection is muted from the moment a request is read until its response
  is written, so responses leave in request order, as Kafka's processors do.
- `num.io.threads` request handler threads decode requests (kio), hand them to the
  gateway and so to the broker's core thread.

Bad bytes close only their own connection: an impossible frame size or one above
`socket.request.max.bytes`, an undecodable request, a failed TLS handshake (tls.py). An API or version the broker does
not serve gets UNSUPPORTED_VERSION where the protocol allows (ApiVersions), else a close.
"""

from __future__ import annotations

import collections
import itertools
import logging
import os
import queue
import selectors
import socket
import ssl
import threading
from dataclasses import dataclass, field

from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.net import tls
from kafkaproof.impl.net.codec import (
    API_VERSIONS,
    SIZE,
    UnsupportedRequest,
    WireError,
    decode_request,
    encode_response,
)
from kafkaproof.impl.net.gateway import APIS, Gateway, api_versions_response
from kafkaproof.impl.net.sasl import AuthenticationFailed, Users
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.storage.disk import FileRegion

log = logging.getLogger("kafkaproof.net")
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36
_ids = itertools.count(1)


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    peer: str
    node: str  # the name the broker answers to (its responses are routed back here)
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: collections.deque = field(default_factory=collections.deque)
    muted: bool = False
    closed: bool = False
    # SASL (impl/net/sasl.py): the exchange under way, and who it authenticated ("User:alice";
    # None on a PLAINTEXT listener, where Kafka's principal is User:ANONYMOUS).
    sasl: object | None = None
    principal: str | None = None
    handshaking: bool = False  # a TLS handshake under way (nothing is read as a request before it ends)


class Processor(threading.Thread):
    def __init__(self, reactor: Reactor, index: int) -> None:
        super().__init__(name=f"{reactor.name}-network-{index}", daemon=True)
        self.reactor = reactor
        self.selector = selectors.DefaultSelector()
        self.new: queue.SimpleQueue = queue.SimpleQueue()
        self.responses: queue.SimpleQueue = queue.SimpleQueue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, None)
        self.conns: set[Connection] = set()

    def wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def add(self, sock: socket.socket, peer: str) -> None:
        self.new.put((sock, peer))
        self.wake()

    def respond(self, conn: Connection, frame: bytes | Close | None) -> None:
        """From any thread: `frame` to send, None (no response: unmute only) or Close."""
        self.responses.put((conn, frame))
        self.wake()

    def run(self) -> None:
        while not self.reactor.stopping.is_set():
            for key, events in self.selector.select(timeout=0.2):
                if key.data is None:
                    try:
                        self._wake_r.recv(4096)
                    except BlockingIOError:
                        pass
                    continue
                conn: Connection = key.data
                if conn.handshaking:
                    self._handshake(conn)
                    continue
                if events & selectors.EVENT_READ:
                    self._read(conn)
                if events & selectors.EVENT_WRITE and not conn.closed:
                    self._write(conn)
            self._accept_new()
            self._drain_responses()
        for conn in list(self.conns):
            self.close(conn, "broker stopping")

    def _accept_new(self) -> None:
        while True:
            try:
                sock, peer = self.new.get_nowait()
            except queue.Empty:
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls_context = self.reactor.tls
            if tls_context is not None:
                sock = tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            conn = Connection(sock, peer, f"client-{self.reactor.broker_id}-{next(_ids)}",
                              handshaking=tls_context is not None)
            self.reactor.gateway.attach(conn.node)
            self.conns.add(conn)
            self.selector.register(sock, selectors.EVENT_READ, conn)
            if conn.handshaking:
                self._handshake(conn)

    def _handshake(self, conn: Connection) -> None:
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.selector.modify(conn.sock, selectors.EVENT_READ, conn)
            return
        except ssl.SSLWantWriteError:
            self.selector.modify(conn.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, conn)
            return
        except (ssl.SSLError, OSError) as e:
            self.reactor.errors += 1
            hint = " (a plaintext client on a TLS listener?)" if "WRONG_VERSION" in str(e) or "HTTP" in str(e) else ""
            self.close(conn, f"TLS handshake failed: {getattr(e, 'reason', None) or e}{hint}", warn=True)
            return
        conn.handshaking = False
        if self.reactor.protocol == "SSL":  # (SASL_SSL: SASL names the principal)
            conn.principal = tls.principal(conn.sock)
        self._events(conn)

    def _drain_responses(self) -> None:
        while True:
            try:
                conn, frame = self.responses.get_nowait()
            except queue.Empty:
                return
            if conn.closed:
                continue
            if isinstance(frame, Close):
                self.close(conn, frame.why)
                continue
            if isinstance(frame, list):  # records to send straight from their segment files
                try:
                    conn.outbuf.extend(_Sendfile(p) if isinstance(p, FileRegion) else memoryview(p) for p in frame)
                except OSError as e:  # the segment was deleted (retention) since the fetch read it
                    self.close(conn, f"cannot send records: {e}")
                    continue
            elif frame is not None:
                conn.outbuf.append(memoryview(frame))
            conn.muted = False
            self._write(conn)
            if not conn.closed:
                # The next request, if it arrived while muted (its answer queues behind this one,
                # so order holds even while this one is still being written).
                self._parse(conn)

    def _events(self, conn: Connection) -> None:
        # Always reading: a muted connection's next requests wait in its buffer, and a
        # peer that closes is noticed at once.
        self.selector.modify(conn.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0), conn)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(1 << 20)
            while isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending():  # decrypted, not yet taken
                data += conn.sock.recv(conn.sock.pending())
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as e:
            self.close(conn, f"read failed: {e}")
            return
        if not data:
            self.close(conn, None)
            return
        conn.inbuf += data
        if len(conn.inbuf) > 4 + self.reactor.config.socket_request_max_bytes + (1 << 20):
            self.reactor.errors += 1
            self.close(conn, "sent far more than one request without waiting for the answers")
            return
        if not conn.muted:
            self._parse(conn)

    def _parse(self, conn: Connection) -> None:
        if conn.muted or len(conn.inbuf) < 4:
            return
        (size,) = SIZE.unpack_from(conn.inbuf)
        limit = self.reactor.config.socket_request_max_bytes
        if size < 0 or size > limit:
            self.reactor.errors += 1
            if tls.looks_like_tls(conn.inbuf[:3]):
                self.close(conn, f"a TLS handshake on a {self.reactor.protocol} listener (the"
                                 f" client's security.protocol says SSL?)", warn=True)
            else:
                self.close(conn, f"frame of {size} bytes (socket.request.max.bytes={limit})")
            return
        if len(conn.inbuf) < 4 + size:
            return
        frame = bytes(conn.inbuf[4:4 + size])
        del conn.inbuf[:4 + size]
        conn.muted = True
        self.reactor.requests.put((self, conn, frame))  # blocks when queued.max.requests are waiting

    def _write(self, conn: Connection) -> None:
        try:
            while conn.outbuf:
                head = conn.outbuf[0]
                if isinstance(head, _Sendfile):
                    if not head.send(conn.sock):
                        break
                    conn.outbuf.popleft()
                    continue
                sent = conn.sock.send(head)
                if sent < len(head):
                    conn.outbuf[0] = head[sent:]
                    break
                conn.outbuf.popleft()
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            pass
        except OSError as e:
            self.close(conn, f"write failed: {e}")
            return
        self._events(conn)

    def close(self, conn: Connection, why: str | None, warn: bool = False) -> None:
        if conn.closed:
            return
        conn.closed = True
        for part in conn.outbuf:
            if isinstance(part, _Sendfile):
                part.close()
        if why:
            log.log(logging.WARNING if warn else logging.INFO, "broker %d: closed %s: %s",
                    self.reactor.broker_id, conn.peer, why)
        self.reactor.gateway.detach(conn.node)
        self.conns.discard(conn)
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        conn.sock.close()


class _Sendfile:
    """A FileRegion on its way out with os.sendfile: the kernel copies file to socket. Over
    TLS the bytes must pass through the encryption, so they are read and sent instead."""

    def __init__(self, region: FileRegion) -> None:
        self.fd = os.open(region.path, os.O_RDONLY)
        self.offset, self.left = region.position, region.length

    def send(self, sock: socket.socket) -> bool:
        """True when all of it is sent; False when the socket is full (try again later)."""
        while self.left:
            if isinstance(sock, ssl.SSLSocket):
                # (a retry after SSLWantWrite re-reads the same bytes, as OpenSSL requires)
                chunk = os.pread(self.fd, min(self.left, 1 << 18), self.offset)
                sent = sock.send(chunk) if chunk else 0
            else:
                sent = os.sendfile(sock.fileno(), self.fd, self.offset, self.left)
            if sent == 0:  # the file shrank under us (truncated): the answer cannot be completed
                raise OSError("segment file truncated while sending it")
            self.offset += sent
            self.left -= sent
        self.close()
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Reactor:
    def __init__(self, broker_id: int, config, gateway: Gateway, host: str = "127.0.0.1", port: int = 0,
                 users: dict[str, str] | None = None, protocol: str | None = None) -> None:
        self.broker_id = broker_id
        self.protocol = protocol or config.security_protocol  # this listener's
        self.name = f"broker-{broker_id}"
        self.config = config
        self.gateway = gateway
        # A SASL listener authenticates every connection before anything but ApiVersions.
        self.users = None
        if self.protocol.startswith("SASL_"):
            if users is None:
                raise ConfigError(f"a {self.protocol} listener needs its users (kafkaproof serve --users"
                                  " FILE: Kafka's JAAS user_NAME=\"PASSWORD\" options, or NAME=PASSWORD lines)")
            self.users = Users(users, config.sasl_mechanisms)  # (a ConfigError for a mechanism not served)
        # An SSL or SASL_SSL listener wraps every connection in TLS (a ConfigError for bad files).
        self.tls = tls.server_context(config.ssl) if self.protocol in tls.TLS_PROTOCOLS else None
        self.stopping = threading.Event()
        self.listener = socket.create_server((host, port), reuse_port=False)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.requests: queue.Queue = queue.Queue(maxsize=config.queued_max_requests)
        self.processors = [Processor(self, i) for i in range(config.num_network_threads)]
        self.handlers = [threading.Thread(target=self._handle_requests, name=f"{self.name}-io-{i}", daemon=True)
                         for i in range(config.num_io_threads)]
        self.acceptor = threading.Thread(target=self._accept, name=f"{self.name}-acceptor", daemon=True)
        self.errors = 0  # connections closed for bad bytes

    def start(self) -> None:
        for t in [*self.processors, *self.handlers, self.acceptor]:
            t.start()

    def stop(self) -> None:
        self.stopping.set()
        for p in self.processors:
            p.wake()
        for _ in self.handlers:
            self.requests.put(None)
        for t in [self.acceptor, *self.processors, *self.handlers]:
            t.join(5)
        self.listener.close()

    def _accept(self) -> None:
        rr = itertools.cycle(self.processors)
        while not self.stopping.is_set():
            try:
                sock, addr = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            next(rr).add(sock, f"{addr[0]}:{addr[1]}")

    def _handle_requests(self) -> None:
        while True:
            item = self.requests.get()
            if item is None:
                return
            try:
                self._handle(*item)
            except Exception:  # a handler thread must outlive any one request
                log.exception("broker %d: request handling failed", self.broker_id)
                self._bad(item[0], item[1], "request handling failed")

    def _handle(self, processor: Processor, conn: Connection, frame: bytes) -> None:
        try:
            req = decode_request(frame)
        except UnsupportedRequest as e:
            self._unsupported(processor, conn, e.api_key, e.correlation_id, str(e))
            return
        except WireError as e:
            self._bad(processor, conn, str(e))
            return
        served = APIS.get(req.api_key)
        if served is None or not served[1] <= req.version <= served[2]:
            self._unsupported(processor, conn, req.api_key, req.correlation_id,
                              f"api key {req.api_key} version {req.version} is not served")
            return
        if req.api_key in (SASL_HANDSHAKE, SASL_AUTHENTICATE):
            self._sasl(processor, conn, req)
            return
        if self.users is not None and conn.principal is None and req.api_key != API_VERSIONS:
            self._bad(processor, conn, f"{served[0]} before SASL authentication (a client without SASL on a"
                                       f" {self.protocol} listener?)")
            return

        def reply(values) -> None:  # on the core thread, when the broker has answered
            try:
                out = None if values is None else encode_response(req.api_key, req.version, req.correlation_id, values)
            except Exception:
                log.exception("broker %d: cannot encode the %s v%d response", self.broker_id,
                              APIS[req.api_key][0], req.version)
                out = Close("the response could not be encoded")
            processor.respond(conn, out)

        self.gateway.handle(conn.node, req, reply, conn.principal, conn.peer.rsplit(":", 1)[0])

    def _sasl(self, processor: Processor, conn: Connection, req) -> None:
        """SaslHandshake names the mechanism, SaslAuthenticate carries its tokens (KIP-152).
        A failure is answered with its error, then the connection closes (as Kafka does)."""
        def answer(values: dict, close: str | None = None) -> None:
            processor.respond(conn, encode_response(req.api_key, req.version, req.correlation_id, values))
            if close:
                self.errors += 1
                log.warning("broker %d: closing %s: %s", self.broker_id, conn.peer, close)
                processor.respond(conn, Close(close))

        offered = list(self.users.mechanisms) if self.users is not None else []
        if req.api_key == SASL_HANDSHAKE:
            # (v0 is advertised - librdkafka 2.0 looks for it - but a v0 client would send raw
            # tokens next, not SaslAuthenticate: those close the connection as bad frames)
            if self.users is None or conn.sasl is not None or conn.principal is not None:
                answer({"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": offered},
                       "SaslHandshake on a connection that is not waiting for one")
                return
            try:
                conn.sasl = self.users.server(req.body.mechanism)
            except KeyError:
                answer({"error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "mechanisms": offered},
                       f"SASL mechanism {req.body.mechanism} is not enabled ({', '.join(offered)})")
                return
            answer({"error_code": ErrorCode.NONE, "mechanisms": offered})
            return
        if conn.sasl is None or conn.principal is not None:
            answer({"error_code": ErrorCode.ILLEGAL_SASL_STATE, "error_message": "no SASL exchange under way",
                    "auth_bytes": b""}, "SaslAuthenticate before SaslHandshake")
            return
        try:
            token = conn.sasl.step(bytes(req.body.auth_bytes))
        except AuthenticationFailed as e:
            answer({"error_code": ErrorCode.SASL_AUTHENTICATION_FAILED, "error_message": str(e), "auth_bytes": b""},
                   f"SASL authentication failed: {e}")
            return
        if conn.sasl.done:
            conn.principal = conn.sasl.principal
            log.info("broker %d: %s authenticated as %s", self.broker_id, conn.peer, conn.principal)
        answer({"error_code": ErrorCode.NONE, "error_message": None, "auth_bytes": token})

    def _unsupported(self, processor: Processor, conn: Connection, api_key: int, correlation_id: int,
                     why: str) -> None:
        if api_key == API_VERSIONS:
            # KIP-511: answer in version 0 with the versions we serve; the client picks again.
            processor.respond(conn, encode_response(API_VERSIONS, 0, correlation_id,
                                                    api_versions_response(ErrorCode.UNSUPPORTED_VERSION)))
        else:
            self._bad(processor, conn, why)

    def _bad(self, processor: Processor, conn: Connection, why: str) -> None:
        self.errors += 1
        log.warning("broker %d: closing %s: %s", self.broker_id, conn.peer, why)
        processor.respond(conn, Close(why))


@dataclass(frozen=True)
class Close:
    """A handler's answer that closes the connection (the processor owns the socket)."""

    why: str
