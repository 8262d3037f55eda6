"""Messages between the cluster's own processes (one broker per OS process, and the
controller in its own): the broker's internal messages, not Kafka's wire protocol.

Every process listens on two internal ports: a data-plane one (replica fetches,
transaction markers, KIP-890 checks) and a control-plane one (LeaderAndIsr,
UpdateMetadata, heartbeats, AlterPartition, CreateTopic) - Kafka's separate
control-plane listener (KIP-291): controller requests travel on their own connections
and never wait behind replication traffic. A frame is a length-prefixed value in
impl/net/peer_codec.py's encoding - (src, dst, plane, message) or a Hello -, which builds
only the registered message types and never runs code; a frame that is not one (a
pickle, garbage, another encoding version, longer than MAX_FRAME) closes the connection
that sent it, and the process goes on. The ports are bound to the address given
(localhost by default). With security.inter.broker.protocol=SSL every link is mutual
TLS (tls.peer_contexts): a process without a certificate the cluster's CA signed - or one
speaking plaintext - fails the handshake and is cut off before a frame is read.

Addresses: each link opens with a `Hello` carrying the sender's directory (node ->
address); the controller's process, to which every broker links, learns every node and
passes the directory on, so brokers find each other. A link that breaks (the peer's
process died: its kernel closed the socket) tells every local process `Disconnected`,
as the simulator does on a crash.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import ssl
import struct
import threading
from dataclasses import dataclass
from functools import cache

from kafkaproof.impl.net.peer_codec import FrameError, Registry, message_types
from kafkaproof.impl.protocol.messages import CONTROL_PLANE, DATA_PLANE, Disconnected

log = logging.getLogger("kafkaproof.peers")
FRAME = struct.Struct(">I")
MAX_FRAME = 128 * 1024 * 1024  # a replica fetch's records are at most replica.fetch.max.bytes (1 MiB)


@dataclass(frozen=True)
class Where:
    host: str
    data_port: int
    control_port: int
    client_port: int = -1  # a broker's port for Kafka clients (its first listener's)
    listeners: tuple[tuple[str, int], ...] = ()  # every client listener: (name, port)

    def port(self, plane: str) -> int:
        return self.control_port if plane == CONTROL_PLANE else self.data_port


@dataclass(frozen=True)
class Hello:
    directory: dict  # node -> Where, as the sender knows it


@cache
def codec() -> Registry:
    return Registry(message_types() + [Hello, Where])


def _send_frame(sock: socket.socket, obj) -> None:
    data = codec().encode(obj)
    sock.sendall(FRAME.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv_frame(sock: socket.socket):
    head = _recv_exact(sock, 4)
    if head is None:
        return None
    size = FRAME.unpack(head)[0]
    if size > MAX_FRAME:
        raise FrameError(f"a frame of {size} bytes (at most {MAX_FRAME})")
    body = _recv_exact(sock, size)
    if body is None:
        return None
    frame = codec().decode(body)
    if not isinstance(frame, Hello) and not (isinstance(frame, tuple) and len(frame) == 4
                                             and all(isinstance(x, str) for x in frame[:3])):
        raise FrameError(f"a {type(frame).__name__} where (src, dst, plane, message) or Hello belongs")
    return frame


class Link:
    """One outbound connection to a peer process, for one plane, with its sender thread."""

    def __init__(self, transport: Transport, where: Where, plane: str) -> None:
        self.transport, self.where, self.plane = transport, where, plane
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.sock: socket.socket | None = None
        self.lock = threading.Lock()  # an SSL connection is read (by _watch) or written, never both at once
        self.thread = threading.Thread(target=self._run, name=f"link-{where.host}:{where.port(plane)}", daemon=True)
        self.thread.start()

    def put(self, frame) -> None:
        self.queue.put(frame)

    def _connect(self) -> bool:
        try:
            sock = socket.create_connection((self.where.host, self.where.port(self.plane)), timeout=2)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.transport.tls is not None:
                sock = self.transport.tls[1].wrap_socket(sock)  # (the handshake, within the timeout)
            sock.settimeout(None)
            self.sock = sock
            _send_frame(self.sock, Hello(dict(self.transport.directory)))
        except OSError as e:
            if isinstance(e, ssl.SSLError):
                log.warning("TLS to peer %s:%d failed: %s", self.where.host, self.where.port(self.plane), e)
            self.sock = None
            return False
        threading.Thread(target=self._watch, args=(self.sock,), daemon=True).start()
        return True

    def _watch(self, sock: socket.socket) -> None:
        """The peer never writes on this connection: EOF means its process is gone."""
        try:
            poller = select.poll()  # (not select.select: a broker may hold more than 1024 files)
            poller.register(sock, select.POLLIN)
            while True:
                poller.poll()
                with self.lock:
                    if not sock.recv(4096):
                        break
        except (OSError, ValueError):
            pass
        self._broken(sock)

    def _broken(self, sock: socket.socket) -> None:
        if self.sock is sock:
            self.sock = None
            try:
                sock.close()
            except OSError:
                pass
            self.transport.peer_gone(self.where)

    def _run(self) -> None:
        while not self.transport.stopping.is_set():
            frame = self.queue.get()
            if frame is None:
                break
            if self.sock is None and not self._connect():
                if isinstance(frame, tuple):  # refused: the sender hears at once
                    src, dst = frame[0], frame[1]
                    self.transport.runtime.post(src, dst, Disconnected(dst, refused=True), self.plane)
                continue
            sock = self.sock
            try:
                with self.lock:
                    _send_frame(sock, frame)
            except OSError:
                self._broken(sock)
        if self.sock is not None:
            self.sock.close()


class Transport:
    def __init__(self, runtime, local_nodes: list[str], host: str = "127.0.0.1", control_port: int = 0,
                 client_port: int = -1, seeds: dict[str, Where] | None = None,
                 endpoints: dict[str, dict[int, tuple[str, int]]] | None = None,
                 tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
                 listeners: tuple[tuple[str, int], ...] = ()) -> None:
        self.runtime = runtime
        self.tls = tls  # (server, client) contexts: every link mutual TLS
        self.stopping = threading.Event()
        self.endpoints = endpoints if endpoints is not None else {}  # listener -> broker -> (host, port)
        self._lock = threading.Lock()
        self.listeners = {DATA_PLANE: socket.create_server((host, 0)),
                          CONTROL_PLANE: socket.create_server((host, control_port))}
        self.me = Where(host, self.listeners[DATA_PLANE].getsockname()[1],
                        self.listeners[CONTROL_PLANE].getsockname()[1], client_port, listeners)
        self.local = set(local_nodes)
        self.directory: dict[str, Where] = dict(seeds or {})
        self.directory.update({n: self.me for n in local_nodes})
        self._note_endpoints(self.directory)
        self.links: dict[tuple[Where, str], Link] = {}
        runtime.transport = self

    def start(self) -> None:
        for plane, listener in self.listeners.items():
            listener.settimeout(0.2)
            threading.Thread(target=self._accept, args=(listener, plane), name=f"peers-{plane}", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        for link in list(self.links.values()):
            link.put(None)
        for listener in self.listeners.values():
            listener.close()

    # -- sending -----------------------------------------------------------------------------

    def send(self, dst: str, src: str, message, plane: str) -> None:
        where = self.directory.get(dst)
        if where is None:
            # A node nobody has announced yet (its process is not up): as a refused connect.
            self.runtime.post(src, dst, Disconnected(dst, refused=True), plane)
            return
        self._link(where, plane).put((src, dst, plane, message))

    def _link(self, where: Where, plane: str) -> Link:
        with self._lock:
            link = self.links.get((where, plane))
            if link is None:
                link = self.links[(where, plane)] = Link(self, where, plane)
            return link

    def peer_gone(self, where: Where) -> None:
        gone = sorted(n for n, w in self.directory.items() if w == where and n not in self.local)
        log.info("lost the link to %s (%s)", ", ".join(gone) or where, f"{where.host}:{where.control_port}")
        for node in gone:
            for local in sorted(self.runtime.procs):
                self.runtime.post(local, node, Disconnected(node), CONTROL_PLANE)

    # -- receiving ---------------------------------------------------------------------------

    def _accept(self, listener: socket.socket, plane: str) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._read, args=(sock,), daemon=True).start()

    def _read(self, sock: socket.socket) -> None:
        try:
            if self.tls is not None:
                sock.settimeout(10)
                try:
                    sock = self.tls[0].wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    log.warning("refused a peer connection: TLS handshake failed (%s)", getattr(e, "reason", e))
                    sock.close()
                    return
            sock.settimeout(None)
            while True:
                frame = _recv_frame(sock)
                if frame is None:
                    return
                if isinstance(frame, Hello):
                    self.learn(frame.directory)
                    continue
                src, dst, plane, message = frame
                self.runtime.post(dst, src, message, plane)
        except (OSError, FrameError) as e:
            log.warning("dropped a peer connection: %s", e)
        finally:
            sock.close()

    def learn(self, directory: dict) -> None:
        """Nodes and where they listen (from a Hello, or ZooKeeper's /brokers/ids)."""
        with self._lock:
            new = {n: w for n, w in directory.items() if n not in self.local and self.directory.get(n) != w}
            self.directory.update(new)
            links = list(self.links.values())
        if new:
            self._note_endpoints(new)
            log.info("peers: %s", ", ".join(f"{n} at {w.host}:{w.control_port}" for n, w in sorted(new.items())))
            for link in links:  # pass it on: brokers learn of each other through the controller
                if link.plane == CONTROL_PLANE:
                    link.put(Hello(dict(self.directory)))

    def _note_endpoints(self, directory: dict) -> None:
        for node, where in directory.items():
            if node.startswith("broker-"):
                for name, port in where.listeners:
                    self.endpoints.setdefault(name, {})[int(node.split("-")[1])] = (where.host, port)
