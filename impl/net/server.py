"""An embedded cluster on localhost: `kafkaproof serve`.

One controller and N brokers run on one core thread (runtime.py); each broker listens
on its own port (port, port+1, ...) through its own Reactor. Data lives in
`data_dir/broker-N` as Kafka segment files, cluster metadata in `data_dir/metadata`;
`stop()` flushes the logs and writes the checkpoints, and a new `EmbeddedCluster` on
the same directory carries on where it stopped.

`BrokerProcess` and `ControllerProcess` are the same pieces one per OS process, linked
by peers.Transport (`kafkaproof serve --controller-only` / `--broker-id N --controller`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping

from kafkaproof.impl.broker import topic_config
from kafkaproof.impl.broker.broker import Broker
from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.controller.config import ControllerConfig
from kafkaproof.impl.controller.controller import Controller
from kafkaproof.impl.net.gateway import Gateway
from kafkaproof.impl.net.metadata_store import FileMetadataStore
from kafkaproof.impl.net.peers import Transport, Where
from kafkaproof.impl.net.reactor import Reactor
from kafkaproof.impl.net.runtime import Runtime
from kafkaproof.impl.protocol.messages import broker_node, controller_node
from kafkaproof.impl.storage.disk import RealDisk

log = logging.getLogger("kafkaproof.serve")


def _broker(broker_id: int, config: BrokerConfig, data_dir: str, controllers: list[int] | None = None) -> Broker:
    """A broker on its files in `data_dir/broker-N`."""
    disk = RealDisk(os.path.join(os.path.abspath(data_dir), f"broker-{broker_id}"))
    # A new process's correlation ids must not match the previous one's (see Broker).
    return Broker(broker_id, config, disk, [0] if controllers is None else controllers,
                  incarnation=int(time.time()) & 0xFFFFFF)


def _listen(runtime, broker: Broker, config: BrokerConfig, endpoints: dict[str, dict], props, host: str, port: int,
            offset: int, users) -> list[tuple[Gateway, Reactor]]:
    """A gateway and a Reactor for each of the broker's listeners (Kafka's `listeners`): the
    first on `port`, the others on their own port from `listeners` (any free one when
    `port` is 0), each plus `offset` (the broker's place in an embedded cluster). A client
    is told the brokers' addresses on the listener it came in by."""
    out = []
    for i, listener in enumerate(config.listeners):
        base = port if i == 0 else listener.port if port else 0
        gateway = Gateway(runtime, broker.id, config, endpoints.setdefault(listener.name, {}), settings=props,
                          acls=lambda: broker.acls, listener="" if i == 0 else listener.name)
        reactor = Reactor(broker.id, config, gateway, host, base + offset if base else 0, users=users,
                          protocol=listener.protocol)
        endpoints[listener.name][broker.id] = (host, reactor.port)
        out.append((gateway, reactor))
    return out


def _peer_tls(config: BrokerConfig):
    """The links' mutual TLS contexts when security.inter.broker.protocol is SSL."""
    from kafkaproof.impl.net import tls

    return tls.peer_contexts(config.ssl) if config.inter_broker_protocol == "SSL" else None


class EmbeddedCluster:
    def __init__(self, data_dir: str, brokers: int = 1, port: int = 9092,
                 props: Mapping[str, str] | None = None, host: str = "127.0.0.1",
                 users: dict[str, str] | None = None) -> None:
        self.config = BrokerConfig.from_properties(props or {})
        self.data_dir = os.path.abspath(data_dir)
        os.makedirs(self.data_dir, exist_ok=True)
        self.runtime = Runtime()
        self.controller = Controller(0, ControllerConfig.of(self.config), FileMetadataStore(os.path.join(self.data_dir, "metadata")))
        self.brokers = {b: _broker(b, self.config, self.data_dir) for b in range(brokers)}
        self.disks = {b: broker.disk for b, broker in self.brokers.items()}
        self.listener_endpoints: dict[str, dict[int, tuple[str, int]]] = {}  # listener -> broker -> address
        self.reactors = {}  # broker -> its first listener's Reactor
        self.listening: list[tuple[Gateway, Reactor]] = []
        for b in range(brokers):
            mine = _listen(self.runtime, self.brokers[b], self.config, self.listener_endpoints, props, host, port, b,
                           users)
            for gateway, _ in mine:
                gateway.start()
            self.reactors[b] = mine[0][1]
            self.listening += mine
        self.endpoints = self.listener_endpoints[self.config.listeners[0].name]
        self.started = False

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.endpoints.values())

    def bootstrap_of(self, listener: str) -> str:
        return ",".join(f"{h}:{p}" for h, p in self.listener_endpoints[listener.upper()].values())

    def start(self, wait_s: float = 15) -> EmbeddedCluster:
        self.runtime.spawn(controller_node(0), self.controller)
        for b, broker in self.brokers.items():
            self.runtime.spawn(broker_node(b), broker)
        self.runtime.start()
        for _, r in self.listening:
            r.start()
        self.started = True
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.runtime.call_wait(lambda: self.controller.active and len(self.controller.alive) == len(self.brokers)):
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"brokers did not register with the controller within {wait_s} s")
        for b, (h, p) in self.endpoints.items():
            log.info("broker %d listening on %s:%d (data in %s)", b, h, p, self.disks[b].root)
        return self

    def create_topic(self, topic: str, partitions: int = 1, replication_factor: int | None = None,
                     wait_s: float = 10, configs: Mapping[str, str] | None = None) -> None:
        """`configs`: the topic's overrides by Kafka's names; a bad one is a ConfigError."""
        rf = replication_factor or self.config.default_replication_factor
        problem = topic_config.refusal(dict(configs or {}))
        if problem is not None:
            raise ConfigError(f"topic {topic}: {problem}")

        def create():
            self.runtime.apply(self.controller.node, self.controller.create_topic(
                topic, partitions, rf, self.runtime.clock(), configs=tuple(sorted((configs or {}).items()))))

        self.runtime.call_wait(create)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.runtime.call_wait(lambda: self._leaders_ready(topic, partitions)):
                return
            time.sleep(0.05)
        raise TimeoutError(f"{topic}: no leader for every partition within {wait_s} s")

    def has_topic(self, topic: str) -> bool:
        return self.runtime.call_wait(lambda: any(tp.topic == topic for tp in self.controller.partitions))

    def _leaders_ready(self, topic: str, partitions: int) -> bool:
        states = [st for tp, st in self.controller.partitions.items() if tp.topic == topic]
        return len(states) == partitions and all(
            st.leader >= 0 and st.tp in self.brokers[st.leader].partitions
            and self.brokers[st.leader].partitions[st.tp].is_leader for st in states)

    def stop(self) -> None:
        """Clean shutdown: stop taking requests, flush every log, write checkpoints."""
        if not self.started:
            return
        for _, r in self.listening:
            r.stop()

        def shutdown():
            for broker in self.brokers.values():
                broker.shutdown()

        self.runtime.call_wait(shutdown, timeout_s=60)
        self.runtime.stop()
        for disk in self.disks.values():
            disk.close()
        self.started = False
        log.info("stopped; data flushed to %s", self.data_dir)

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class BrokerProcess:
    """One broker in this OS process, its controller in another (`--controller HOST:PORT`):
    for fault tests that kill or stop a single broker. Or, with `zookeeper`
    (`--metadata zookeeper://HOST:PORT`), as a Kafka <= 3.x broker: every broker process also
    runs a controller candidate, the metadata lives in ZooKeeper (zookeeper_store.py),
    brokers register under /brokers/ids and find each other there, and whoever holds
    /controller is the controller until its session expires."""

    def __init__(self, broker_id: int, controller: tuple[str, int] | None, data_dir: str, port: int = 9092,
                 props: Mapping[str, str] | None = None, host: str = "127.0.0.1",
                 users: dict[str, str] | None = None, zookeeper: str | None = None) -> None:
        self.config = BrokerConfig.from_properties(props or {})
        self.runtime = Runtime()
        self.store = None
        if zookeeper is not None:
            from kafkaproof.impl.net.zookeeper_store import ZooKeeperMetadataStore

            self.store = ZooKeeperMetadataStore(zookeeper, self.config.zookeeper_session_timeout_ms,
                                                self.config.zookeeper_connection_timeout_ms / 1000)
        self.broker = _broker(broker_id, self.config, data_dir, controllers=None if self.store is None else [])
        self.disk = self.broker.disk
        self.listener_endpoints: dict[str, dict[int, tuple[str, int]]] = {}
        self.listening = _listen(self.runtime, self.broker, self.config, self.listener_endpoints, props, host, port, 0,
                                 users)
        self.gateway, self.reactor = self.listening[0]
        self.endpoints = self.listener_endpoints[self.config.listeners[0].name]
        local = [self.broker.node, *(g.node for g, _ in self.listening)]
        self.controller = None
        if self.store is not None:
            self.controller = Controller(broker_id, ControllerConfig.of(self.config), self.store)
            local.append(self.controller.node)
            seeds = {}
        else:
            chost, cport = controller
            seeds = {controller_node(0): Where(chost, cport, cport)}
        self.transport = Transport(self.runtime, local, host, client_port=self.reactor.port,
                                   endpoints=self.listener_endpoints, seeds=seeds, tls=_peer_tls(self.config),
                                   listeners=tuple((listener.name, r.port) for listener, (_, r)
                                                   in zip(self.config.listeners, self.listening, strict=True)))

    def start(self) -> BrokerProcess:
        self.transport.start()
        self.runtime.spawn(self.broker.node, self.broker)
        if self.controller is not None:
            self.runtime.spawn(self.controller.node, self.controller)
        self.runtime.start()
        for gateway, reactor in self.listening:
            gateway.start()
            reactor.start()
        if self.store is not None:
            self._join_zookeeper()
        log.info("broker %d listening on %s:%d (data in %s)", self.broker.id, *self.endpoints[self.broker.id],
                 self.disk.root)
        return self

    def _join_zookeeper(self) -> None:
        """Register under /brokers/ids (Kafka's registration, with our peer ports) and learn
        the other brokers - and the controller candidates beside them - from there."""
        me = self.transport.me
        host, port = self.endpoints[self.broker.id]
        self.store.register(self.broker.id, {
            "host": host, "port": port, "endpoints": [f"{name}://{host}:{p}" for name, p in me.listeners],
            "listener_security_protocol_map": {listener.name: listener.protocol for listener in self.config.listeners},
            "kafkaproof": {"data_port": me.data_port, "control_port": me.control_port}})

        def brokers_changed(found: dict[int, dict]) -> None:
            directory = {}
            for b, info in found.items():
                peer = info.get("kafkaproof", {})
                listeners = tuple((e.partition("://")[0], int(e.rpartition(":")[2])) for e in info.get("endpoints", ()))
                where = Where(info["host"], peer.get("data_port", -1), peer.get("control_port", -1), info["port"],
                              listeners)
                directory[broker_node(b)] = directory[controller_node(b)] = where
            self.transport.learn(directory)
            ids = sorted(found)
            self.runtime.call(lambda: self.broker.controllers.__setitem__(slice(None), ids))

        self.store.watch_brokers(brokers_changed)
        def controller_moved(b: int) -> None:
            for gateway, _ in self.listening:
                gateway.controller = controller_node(b)

        self.store.watch_controller(controller_moved)

    def stop(self) -> None:
        for _, reactor in self.listening:
            reactor.stop()
        self.runtime.call_wait(self.broker.shutdown, timeout_s=60)
        self.runtime.stop()
        self.transport.stop()
        if self.store is not None:
            self.store.close()
        self.disk.close()
        log.info("broker %d stopped; data flushed to %s", self.broker.id, self.disk.root)


class ControllerProcess:
    """The controller alone, its metadata in `data_dir/metadata`; brokers find it at
    `port` (its control-plane listener)."""

    def __init__(self, data_dir: str, port: int = 9093, props: Mapping[str, str] | None = None,
                 host: str = "127.0.0.1") -> None:
        self.config = BrokerConfig.from_properties(props or {})
        os.makedirs(data_dir, exist_ok=True)
        self.runtime = Runtime()
        self.controller = Controller(0, ControllerConfig.of(self.config), FileMetadataStore(os.path.join(data_dir, "metadata")))
        self.transport = Transport(self.runtime, [self.controller.node], host, control_port=port,
                                   tls=_peer_tls(self.config))
        self.port = self.transport.me.control_port

    def start(self) -> ControllerProcess:
        self.transport.start()
        self.runtime.spawn(self.controller.node, self.controller)
        self.runtime.start()
        log.info("controller listening on %s:%d", self.transport.me.host, self.port)
        return self

    def stop(self) -> None:
        self.runtime.stop()
        self.transport.stop()
