"""The controller's metadata store in ZooKeeper (issue 22), in Kafka <= 3.x's layout, for
`kafkaproof serve --broker-id N --metadata zookeeper://HOST:2181[/chroot]`.

    /brokers/ids/N                           ephemeral: a broker's registration (its addresses)
    /brokers/topics/T                        the assignment: {"version": 2, "partitions": {"0": [1, 2, 3]}}
    /brokers/topics/T/partitions/P/state     leader, leader epoch, ISR, controller epoch (+ ours)
    /config/topics/T                         the topic's overrides
    /controller                              ephemeral: {"version": 1, "brokerid": N, "timestamp": ...}
    /controller_epoch                        the controller epoch
    /kafka-acl/<ResourceType>/<name>         the ACLs (as Kafka's AclAuthorizer keeps them)
    /kafkaproof/cluster                      broker epochs and the next producer id block (KRaft's
                                             BrokerRegistration epochs; ZooKeeper Kafka's
                                             /latest_producer_id_block)

Election, as Kafka's ZooKeeper controller: whoever creates the ephemeral /controller is the
controller; it bumps /controller_epoch; when its session expires (its process died, or it
was cut off longer than zookeeper.session.timeout.ms) ZooKeeper deletes /controller and
another broker takes it. Fencing, as Kafka's zkVersion checks: every commit is one
ZooKeeper transaction that first checks /controller_epoch's version is the one this
controller wrote, and sets each changed znode at the version it read - a deposed
controller's commit fails whole. The simulator keeps its linearizable in-memory store
(impl/controller/store.py); this one has the same interface (acquire, read, commit).
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable
from urllib.parse import urlparse

from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.controller.store import ClusterMetadata
from kafkaproof.impl.protocol.messages import AclBinding, PartitionState, TopicPartition

log = logging.getLogger("kafkaproof.zookeeper")
CONTROLLER, EPOCH = "/controller", "/controller_epoch"
# Kafka's AclAuthorizer names resource types in its paths as ResourceType's Java names.
ACL_TYPES = {"TOPIC": "Topic", "GROUP": "Group", "CLUSTER": "Cluster", "TRANSACTIONAL_ID": "TransactionalId",
             "DELEGATION_TOKEN": "DelegationToken", "USER": "User"}


def parse_address(url: str) -> tuple[str, str]:
    """zookeeper://HOST:PORT[,HOST:PORT...][/chroot] (or Kafka's zookeeper.connect form,
    without the scheme) -> (hosts, chroot)."""
    if "://" in url:
        parsed = urlparse(url)
        if parsed.scheme != "zookeeper" or not parsed.netloc:
            raise ConfigError(f"--metadata {url!r}: expected zookeeper://HOST:PORT[/chroot]")
        return parsed.netloc, parsed.path.rstrip("/")
    hosts, _, chroot = url.partition("/")
    return hosts, ("/" + chroot).rstrip("/") if chroot else ""


class ZooKeeperMetadataStore:
    def __init__(self, url: str, session_timeout_ms: int = 18_000, connect_timeout_s: float = 15) -> None:
        from kazoo.client import KazooClient  # (only serve's ZooKeeper mode needs kazoo)
        from kazoo.handlers.threading import KazooTimeoutError

        hosts, chroot = parse_address(url)
        self.session_timeout_ms = session_timeout_ms
        self.zk = KazooClient(hosts=hosts, timeout=session_timeout_ms / 1000)
        try:
            self.zk.start(timeout=connect_timeout_s)
        except KazooTimeoutError:
            self.zk.close()
            raise ConfigError(f"cannot reach ZooKeeper at {hosts} within {connect_timeout_s:g} s") from None
        if chroot:  # (made first: every path below is inside it)
            self.zk.ensure_path(chroot)
            self.zk.chroot = chroot
        for path in ("/brokers/ids", "/brokers/topics", "/config/topics", "/kafka-acl", "/kafkaproof"):
            self.zk.ensure_path(path)
        self.data = ClusterMetadata()
        self.controller_id = -1
        self.controller_epoch = 0
        self._epoch_version = -1  # /controller_epoch's zkVersion as this controller wrote it
        self._versions: dict[str, int] = {}  # znode -> the zkVersion last read or written
        self._me: int | None = None
        self.observers: list = []

    # -- registration (Kafka's /brokers/ids) --------------------------------------------------

    def register(self, broker_id: int, info: dict) -> None:
        from kazoo.exceptions import NodeExistsError

        path = f"/brokers/ids/{broker_id}"
        value = json.dumps({"version": 5, "timestamp": str(int(time.time() * 1000)), **info}).encode()
        deadline = time.monotonic() + self.session_timeout_ms / 1000 + 5
        while True:
            try:
                self.zk.create(path, value, ephemeral=True)
                return
            except NodeExistsError:  # our previous life's session, not yet expired
                if time.monotonic() > deadline:
                    raise ConfigError(f"broker {broker_id} is already registered in ZooKeeper ({path})") from None
                time.sleep(0.5)

    def watch_brokers(self, on_change: Callable[[dict[int, dict]], None]) -> None:
        """Call `on_change({id: registration})` now and whenever /brokers/ids changes."""
        def changed(children):
            found = {}
            for c in children:
                try:
                    raw, _ = self.zk.get(f"/brokers/ids/{c}")
                    found[int(c)] = json.loads(raw)
                except Exception:  # gone between the listing and the read
                    continue
            on_change(found)

        self.zk.ChildrenWatch("/brokers/ids", changed)

    def watch_controller(self, on_change: Callable[[int], None]) -> None:
        """Call `on_change(broker id)` whenever /controller names a (new) controller."""
        def changed(raw, stat):
            if raw:
                on_change(int(json.loads(raw)["brokerid"]))

        self.zk.DataWatch(CONTROLLER, changed)

    # -- the MetadataStore interface ----------------------------------------------------------

    def acquire(self, node_id: int, now: int, lease_ms: int) -> int | None:
        """Stay or become the controller through the ephemeral /controller; its epoch, or None."""
        from kazoo.exceptions import KazooException
        from kazoo.protocol.states import KazooState

        if self.zk.state != KazooState.CONNECTED:
            self._me = None  # suspended or lost: act as deposed until ZooKeeper says otherwise
            return None
        try:
            holder = self.zk.exists(CONTROLLER)
            if self._me == node_id and holder is not None and holder.ephemeralOwner == self.zk.client_id[0]:
                return self.controller_epoch  # still ours: this session created it
            self._me = None
            if holder is not None:
                return None
            epoch = self._elect(node_id)
        except KazooException as e:
            log.warning("ZooKeeper: %s", e)
            return None
        if epoch is None:
            return None
        self._load()
        self._me, self.controller_id, self.controller_epoch = node_id, node_id, epoch
        log.info("broker %d is the controller (epoch %d)", node_id, epoch)
        return epoch

    def read(self) -> ClusterMetadata:
        return self.data

    def commit(self, controller_epoch: int, change: Callable[[ClusterMetadata], None]) -> bool:
        from kazoo.exceptions import KazooException

        if controller_epoch != self.controller_epoch or self._me is None:
            return False
        new = copy.deepcopy(self.data)
        change(new)
        txn = self.zk.transaction()
        txn.check(EPOCH, self._epoch_version)  # Kafka's controller epoch zkVersion check
        writes = self._diff(self.data, new, txn)
        try:
            results = txn.commit()
        except KazooException as e:
            log.warning("ZooKeeper commit failed: %s", e)
            return False
        if any(isinstance(r, Exception) for r in results):
            log.warning("ZooKeeper refused a commit of controller epoch %d (a newer controller?): %s",
                        controller_epoch, [type(r).__name__ for r in results if isinstance(r, Exception)])
            self._me = None
            return False
        for (path, kind), r in zip(writes, results[1:], strict=True):
            if kind == "set":
                self._versions[path] = r.version
            elif kind == "create":
                self._versions[path] = 0
            else:
                self._versions.pop(path, None)
        self.data.__dict__.update(new.__dict__)
        for observe in self.observers:
            observe(self.data)
        return True

    def close(self) -> None:
        self.zk.stop()
        self.zk.close()

    # -- reading and writing the layout -------------------------------------------------------

    def _elect(self, node_id: int) -> int | None:
        """Create /controller and bump /controller_epoch in one transaction (Kafka's
        registerControllerAndIncrementControllerEpoch): nobody sees the new controller with
        the old epoch. The new epoch, or None when another broker got there first."""
        from kazoo.exceptions import NodeExistsError

        try:
            self.zk.create(EPOCH, b"0")
        except NodeExistsError:
            pass
        raw, stat = self.zk.get(EPOCH)
        epoch = int(raw or b"0") + 1
        txn = self.zk.transaction()
        txn.create(CONTROLLER, json.dumps({"version": 1, "brokerid": node_id,
                                           "timestamp": str(int(time.time() * 1000))}).encode(), ephemeral=True)
        txn.set_data(EPOCH, str(epoch).encode(), version=stat.version)
        created, bumped = txn.commit()
        if isinstance(created, Exception) or isinstance(bumped, Exception):
            return None
        self._epoch_version = bumped.version
        return epoch

    def _get(self, path: str) -> dict | None:
        from kazoo.exceptions import NoNodeError

        try:
            raw, stat = self.zk.get(path)
        except NoNodeError:
            return None
        self._versions[path] = stat.version
        return json.loads(raw) if raw else {}

    def _load(self) -> None:
        """The whole cluster from ZooKeeper: a new controller's first act (Kafka's
        KafkaController.onControllerFailover reads the same znodes)."""
        self._versions.clear()
        data = ClusterMetadata()
        for topic in sorted(self.zk.get_children("/brokers/topics")):
            assignment = self._get(f"/brokers/topics/{topic}") or {}
            for p in sorted(assignment.get("partitions", {}), key=int):
                state = self._get(f"/brokers/topics/{topic}/partitions/{p}/state")
                if state is not None:
                    data.partitions[TopicPartition(topic, int(p))] = _state(topic, int(p), state)
        for topic in sorted(self.zk.get_children("/config/topics")):
            configs = (self._get(f"/config/topics/{topic}") or {}).get("config", {})
            if configs:
                data.topic_configs[topic] = dict(configs)
        acls = []
        for kind in sorted(self.zk.get_children("/kafka-acl")):
            for name in sorted(self.zk.get_children(f"/kafka-acl/{kind}")):
                acls += [AclBinding(*a) for a in (self._get(f"/kafka-acl/{kind}/{name}") or {}).get("acls", [])]
        data.acls = tuple(sorted(acls))
        cluster = self._get("/kafkaproof/cluster") or {}
        data.broker_epochs = {int(b): e for b, e in cluster.get("broker_epochs", {}).items()}
        data.next_broker_epoch = cluster.get("next_broker_epoch", data.next_broker_epoch)
        data.next_producer_id = cluster.get("next_producer_id", data.next_producer_id)
        self.data = data

    def _diff(self, old: ClusterMetadata, new: ClusterMetadata, txn) -> list[tuple[str, str]]:
        """Queue in `txn` the znode writes that turn `old` into `new`; (path, kind) of each."""
        writes: list[tuple[str, str]] = []

        def put(path: str, value: dict | None) -> None:
            if value is None:
                txn.delete(path, version=self._versions.get(path, -1))
                writes.append((path, "delete"))
            elif path in self._versions:
                txn.set_data(path, json.dumps(value).encode(), version=self._versions[path])
                writes.append((path, "set"))
            else:
                txn.create(path, json.dumps(value).encode())
                writes.append((path, "create"))

        topics = lambda d: {tp.topic for tp in d.partitions}  # noqa: E731
        for topic in sorted(topics(old) - topics(new)):  # deleted: states, then partitions, then the topic
            tps = sorted(tp for tp in old.partitions if tp.topic == topic)
            for tp in tps:
                put(f"/brokers/topics/{topic}/partitions/{tp.partition}/state", None)
                put(f"/brokers/topics/{topic}/partitions/{tp.partition}", None)
            put(f"/brokers/topics/{topic}/partitions", None)
            put(f"/brokers/topics/{topic}", None)
        for topic in sorted(topics(new)):
            tps = sorted(tp for tp in new.partitions if tp.topic == topic)
            assignment = {"version": 2, "partitions": {str(tp.partition): list(new.partitions[tp].replicas)
                                                       for tp in tps}}
            before = sorted(tp for tp in old.partitions if tp.topic == topic)
            if topic not in topics(old) or len(before) != len(tps) or any(
                    old.partitions[tp].replicas != new.partitions[tp].replicas for tp in before):
                put(f"/brokers/topics/{topic}", assignment)
            if topic not in topics(old) and f"/brokers/topics/{topic}/partitions" not in self._versions:
                put(f"/brokers/topics/{topic}/partitions", {})
            for tp in tps:
                if old.partitions.get(tp) != new.partitions[tp]:
                    base = f"/brokers/topics/{topic}/partitions/{tp.partition}"
                    if tp not in old.partitions and base not in self._versions:
                        put(base, {})
                    put(base + "/state", _state_json(new.partitions[tp], self.controller_epoch))
        for topic in sorted(set(old.topic_configs) | set(new.topic_configs)):
            if old.topic_configs.get(topic) != new.topic_configs.get(topic):
                configs = new.topic_configs.get(topic)
                put(f"/config/topics/{topic}", {"version": 1, "config": configs} if configs else None)
        if old.acls != new.acls:
            self._diff_acls(old.acls, new.acls, put)
        cluster = {"broker_epochs": {str(b): e for b, e in sorted(new.broker_epochs.items())},
                   "next_broker_epoch": new.next_broker_epoch, "next_producer_id": new.next_producer_id}
        if (old.broker_epochs, old.next_broker_epoch, old.next_producer_id) != (
                new.broker_epochs, new.next_broker_epoch, new.next_producer_id) or "/kafkaproof/cluster" not in self._versions:
            put("/kafkaproof/cluster", cluster)
        return writes

    def _diff_acls(self, old: tuple, new: tuple, put) -> None:
        def by_resource(acls) -> dict[str, list]:
            out: dict[str, list] = {}
            for a in acls:
                out.setdefault(f"/kafka-acl/{ACL_TYPES[a.resource_type]}/{_acl_name(a)}", []).append(list(a))
            return out

        before, after = by_resource(old), by_resource(new)
        for kind in sorted({p.rsplit("/", 1)[0] for p in after} - set(self._versions)):
            if self.zk.exists(kind) is None:
                put(kind, {})
        for path in sorted(set(before) | set(after)):
            if before.get(path) != after.get(path):
                put(path, {"version": 1, "acls": after[path]} if path in after else None)


def _acl_name(a: AclBinding) -> str:
    # (a PREFIXED pattern and a literal of the same name are different znodes: Kafka keeps
    # prefixed ones under /kafka-acl-extended; one tree with a marker is enough here)
    return ("prefixed:" if a.pattern_type == "PREFIXED" else "") + a.resource_name.replace("/", "%2F")


def _state_json(st: PartitionState, controller_epoch: int) -> dict:
    """Kafka's partition state znode, with what KRaft added (partition epoch, ELR, ...)."""
    return {"version": 1, "controller_epoch": controller_epoch, "leader": st.leader, "leader_epoch": st.leader_epoch,
            "isr": list(st.isr), "replicas": list(st.replicas), "partition_epoch": st.partition_epoch,
            "adding": list(st.adding), "removing": list(st.removing), "elr": list(st.elr),
            "last_known_elr": list(st.last_known_elr)}


def _state(topic: str, partition: int, j: dict) -> PartitionState:
    return PartitionState(TopicPartition(topic, partition), j["leader"], j["leader_epoch"], tuple(j["isr"]),
                          tuple(j["replicas"]), j["partition_epoch"], tuple(j.get("adding", ())),
                          tuple(j.get("removing", ())), tuple(j.get("elr", ())), tuple(j.get("last_known_elr", ())))
