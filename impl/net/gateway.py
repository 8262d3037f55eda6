"""Kafka's wire requests to the sans-IO broker's messages and back.

A wire request names many partitions; the broker's messages name one (see
messages.py), so a request becomes one internal request per partition and its
response is gathered from their answers. No protocol logic lives here: every error,
offset and assignment comes from the broker, its coordinators or the controller.

`handle(...)` runs on a request-handler thread; `on_message` on the core thread; the
`reply` callback hands a response's values (or None: no response, acks=0) to the
connection's network thread, which encodes and sends it.
"""

from __future__ import annotations

import io
import itertools
import struct
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kafkaproof.impl.broker import acl, topic_config
from kafkaproof.impl.broker.config import BROKER_KEYS
from kafkaproof.impl.config import resolve
from kafkaproof.impl.coordinator.group import OFFSETS_TOPIC
from kafkaproof.impl.coordinator.transaction import TXN_STATE_TOPIC
from kafkaproof.impl.net.authorize import (
    ANONYMOUS,
    CLUSTER_APIS,
    CLUSTER_DENIED,
    TOPIC_DENIED,
    Guard,
)
from kafkaproof.impl.net.codec import Request, make, value
from kafkaproof.impl.net.fetch_sessions import FINAL_EPOCH, INITIAL_EPOCH, FetchSessions
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import TopicPartition
from kio.schema.consumer_protocol_assignment.v0.data import ConsumerProtocolAssignment
from kio.schema.consumer_protocol_subscription.v1.data import ConsumerProtocolSubscription
from kio.serial import entity_reader, entity_writer

Reply = Callable[[dict | None], None]

# api key -> (name, lowest, highest version served). Produce and Fetch stop at 12:
# 13 names topics by id (KIP-516), which the broker does not keep.
APIS = {
    0: ("Produce", 3, 12), 1: ("Fetch", 4, 12), 2: ("ListOffsets", 1, 10), 3: ("Metadata", 1, 12),
    8: ("OffsetCommit", 2, 8), 9: ("OffsetFetch", 1, 7), 10: ("FindCoordinator", 0, 4),
    11: ("JoinGroup", 0, 9), 12: ("Heartbeat", 0, 4), 13: ("LeaveGroup", 0, 5), 14: ("SyncGroup", 0, 5),
    15: ("DescribeGroups", 0, 5), 16: ("ListGroups", 0, 4), 17: ("SaslHandshake", 0, 1), 18: ("ApiVersions", 0, 3),
    19: ("CreateTopics", 2, 7),
    20: ("DeleteTopics", 1, 5), 21: ("DeleteRecords", 0, 2), 22: ("InitProducerId", 0, 4),
    23: ("OffsetForLeaderEpoch", 2, 4), 24: ("AddPartitionsToTxn", 0, 3), 25: ("AddOffsetsToTxn", 0, 3),
    26: ("EndTxn", 0, 5), 28: ("TxnOffsetCommit", 0, 5), 29: ("DescribeAcls", 1, 3), 30: ("CreateAcls", 1, 3),
    31: ("DeleteAcls", 1, 3), 32: ("DescribeConfigs", 1, 4), 33: ("AlterConfigs", 0, 2),
    35: ("DescribeLogDirs", 1, 4), 36: ("SaslAuthenticate", 0, 2), 37: ("CreatePartitions", 0, 3), 42: ("DeleteGroups", 0, 2),
    43: ("ElectLeaders", 0, 2), 44: ("IncrementalAlterConfigs", 0, 1), 45: ("AlterPartitionReassignments", 0, 0),
    46: ("ListPartitionReassignments", 0, 0), 47: ("OffsetDelete", 0, 0), 60: ("DescribeCluster", 0, 1),
    61: ("DescribeProducers", 0, 0), 65: ("DescribeTransactions", 0, 0), 66: ("ListTransactions", 0, 1),
    75: ("DescribeTopicPartitions", 0, 0),
}


def api_table_markdown() -> str:
    """The README's table of the APIs `serve` answers (tests/test_serve_groups.py)."""
    rows = ["| key | API | versions |", "|---|---|---|"]
    rows += [f"| {key} | {name} | {low}-{high} |" for key, (name, low, high) in sorted(APIS.items())]
    return "\n".join(rows)


BROKER_RESOURCE, TOPIC_RESOURCE = 4, 2
DYNAMIC_TOPIC_CONFIG, STATIC_BROKER_CONFIG, DEFAULT_CONFIG = 1, 4, 5  # DescribeConfigs config_source
SET = 0  # IncrementalAlterConfigs' operation
# DescribeConfigs v3+ config_type (ConfigEntry.ConfigType), by impl/config.Key's types
CONFIG_TYPES = {"bool": 1, "string": 2, "int": 3, "long": 5, "double": 6, "list": 7}


@dataclass
class Gather:
    """The internal answers one wire request waits for, handed to `finish` in request order
    (whatever order they arrive in: a refusal is answered at once, the others later)."""

    expected: int
    finish: Callable[[list], dict | None]
    reply: Reply
    answers: dict = field(default_factory=dict)  # the request's place -> its answer
    slots: dict = field(default_factory=dict)  # correlation id -> the request's place
    early: Callable[[object], bool] | None = None  # an answer that completes the request at once
    done: bool = False


class Gateway:
    def __init__(self, runtime, broker_id: int, config, endpoints: dict[int, tuple[str, int]],
                 cluster_id: str = "kafkaproof", settings=None, acls: Callable[[], tuple] = tuple,
                 listener: str = "") -> None:
        self.runtime = runtime
        self.broker = m.broker_node(broker_id)
        self.broker_id = broker_id
        self.endpoints = endpoints  # broker id -> (host, port) clients connect to
        self.cluster_id = cluster_id
        # Topic creation goes to the controller from this node (its answers come back here).
        # (one gateway per listener: the first is gateway-N, the others gateway-N-NAME)
        self.node = f"gateway-{broker_id}" + (f"-{listener.lower()}" if listener else "")
        self.controller = m.controller_node(0)
        self.config = config
        self.settings = resolve(BROKER_KEYS, settings or {}, "broker")  # key -> value, for DescribeConfigs
        self._corr = itertools.count(1)
        self._pending: dict[int, Gather] = {}
        self._lock = threading.Lock()
        self.sessions = FetchSessions(config.fetch_session_cache_slots)
        # Who sent each connection's requests: (principal, host), for the authorizer.
        self.who: dict[str, tuple[str, str]] = {}
        self.guard = Guard(config, acls)  # acls: the broker's copy, from UpdateMetadata

    # -- plumbing ----------------------------------------------------------------------------

    def start(self) -> None:
        self.attach(self.node)

    def attach(self, node: str) -> None:
        self.runtime.outside[node] = self.on_message

    def detach(self, node: str) -> None:
        self.runtime.outside.pop(node, None)
        self.who.pop(node, None)

    def on_message(self, msg: object) -> None:
        corr = getattr(msg, "correlation_id", None)
        with self._lock:  # (the core thread's answers and a handler thread's refusals meet here)
            g = self._pending.pop(corr, None)
            if g is None or g.done:
                return
            g.answers[g.slots[corr]] = msg
            g.done = len(g.answers) == g.expected or (g.early is not None and g.early(msg))
            if not g.done:
                return
        g.reply(g.finish([g.answers[i] for i in sorted(g.answers)]))

    def _ask(self, node: str, make_requests: list[Callable[[int], object]], finish, reply: Reply,
             early=None, to: str | None = None, client: str | None = None) -> None:
        """Send the internal requests from `node`, on behalf of connection `client` (default
        `node`; None: the gateway's own, unchecked). One the client may not make is answered
        here with its refusal (authorize.py) and never sent."""
        if not make_requests:
            reply(finish([]))
            return
        g = Gather(len(make_requests), finish, reply, early=early)
        msgs = []
        with self._lock:
            for place, build in enumerate(make_requests):
                corr = next(self._corr)
                self._pending[corr] = g
                g.slots[corr] = place
                msgs.append(build(corr))
        who = self.who.get(node if client is None else client) if self.guard.enabled else None
        refused = []
        for msg in msgs:
            refusal = None if who is None else self.guard.refusal(who, msg)
            if refusal is None:
                self.runtime.send(to or self.broker, node, msg)
            else:
                refused.append(refusal)
        for refusal in refused:
            self.on_message(refusal)

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, node: str, req: Request, reply: Reply, principal: str | None = None, host: str = "") -> None:
        name = APIS[req.api_key][0]
        self.who[node] = (principal or ANONYMOUS, host)
        operation = CLUSTER_APIS.get(name)
        if operation is not None and not self._may(node, operation, "CLUSTER"):
            reply({"error_code": CLUSTER_DENIED, "error_message": f"{name} needs {operation} on the cluster"})
            return
        getattr(self, "_" + name)(node, req.body, req.version, reply)

    def _may(self, node: str, operation: str, resource_type: str, name: str | None = "kafka-cluster") -> bool:
        return self.guard.allows(self.who.get(node, (ANONYMOUS, "")), operation, resource_type, name)

    def _ApiVersions(self, node, body, version, reply) -> None:
        reply(api_versions_response(transaction_version=1 if self.config.legacy_transactions_without_kip890 else 2))

    def _Metadata(self, node, body, version, reply) -> None:
        asked = None if body.topics is None else tuple(t.name for t in body.topics if t.name is not None)
        wanted, denied = self._described(node, asked)
        auto = value(body, "allow_auto_topic_creation", True)

        def finish(answers):
            r = answers[0]
            topics = [{**t, "error_code": 0, "is_internal": t["name"].startswith("__")} for t in _grouped(
                (pm.tp.topic, {"error_code": ErrorCode.LEADER_NOT_AVAILABLE if pm.leader < 0 else 0,
                               "partition_index": pm.tp.partition, "leader_id": pm.leader,
                               "leader_epoch": pm.leader_epoch, "replica_nodes": pm.replicas, "isr_nodes": pm.isr})
                for pm in sorted(self._visible(node, r.partitions), key=lambda pm: pm.tp))]
            topics += [{"error_code": TOPIC_DENIED, "name": t} for t in denied]
            for t in r.unknown_topics:
                # auto.create.topics.enable (Kafka's default): created, leaderless for a moment -
                # with an authorizer, by a principal allowed to CREATE it (KafkaApis.getTopicMetadata)
                created = auto and _valid_topic(t)
                if created and not self._may(node, "CREATE", "CLUSTER|TOPIC", t):
                    topics.append({"error_code": TOPIC_DENIED, "name": t})
                    continue
                if created:
                    self._create(t, -1, -1, if_absent=True)
                # Kafka names a topic that cannot exist INVALID_TOPIC_EXCEPTION (Topic.validate
                # in KafkaApis.getTopicMetadata), one that merely does not UNKNOWN_TOPIC_OR_PARTITION.
                topics.append({"error_code": ErrorCode.LEADER_NOT_AVAILABLE if created
                               else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if _valid_topic(t)
                               else ErrorCode.INVALID_TOPIC_EXCEPTION, "name": t})
            return {**self._brokers(r), "topics": topics}

        self._ask(node, [lambda c: m.MetadataRequest(c, wanted)], finish, reply)

    def _described(self, node, asked: tuple[str, ...] | None) -> tuple[tuple[str, ...] | None, tuple[str, ...]]:
        """Of the topics a request names (None: all), those it may DESCRIBE and those not."""
        if asked is None or not self.guard.enabled:
            return asked, ()
        return (tuple(t for t in asked if self._may(node, "DESCRIBE", "TOPIC", t)),
                tuple(t for t in asked if not self._may(node, "DESCRIBE", "TOPIC", t)))

    def _visible(self, node, partitions):
        """A listing shows only the topics the client may DESCRIBE (Kafka filters, not errors)."""
        if not self.guard.enabled:
            return partitions
        allowed = {t for t in {pm.tp.topic for pm in partitions} if self._may(node, "DESCRIBE", "TOPIC", t)}
        return [pm for pm in partitions if pm.tp.topic in allowed]

    def _Produce(self, node, body, version, reply) -> None:
        acks, timeout = body.acks, value(body, "timeout")
        txn = value(body, "transactional_id")
        tps = [(t.name, p.index, p.records or b"") for t in body.topic_data for p in t.partition_data]

        def finish(answers):
            if acks == 0:
                return None
            return {"responses": _grouped(
                ((r.tp.topic, {"index": r.tp.partition, "error_code": r.error, "base_offset": r.base_offset,
                               "log_start_offset": r.log_start_offset, "error_message": r.message or None})
                 for r in answers), items="partition_responses")}

        # v12 is transaction version 2's (KIP-890 part 2): its client sends no AddPartitionsToTxn.
        requests = [lambda c, t=t, p=p, data=data: m.ProduceRequest(c, TopicPartition(t, p), acks, timeout, bytes(data), txn,
                                                                    add_partition=txn is not None and version >= 12)
                    for t, p, data in tps]
        if acks == 0:
            self._ask(node, requests, lambda answers: None, lambda values: None)
            reply(None)
        else:
            self._ask(node, requests, finish, reply)

    def _Fetch(self, node, body, version, reply) -> None:
        isolation = value(body, "isolation_level", 0)
        max_wait, min_bytes = value(body, "max_wait", 0), body.min_bytes
        # KIP-227 (v7 on; older versions carry no session: epoch -1, sessionless)
        epoch = value(body, "session_epoch", FINAL_EPOCH)
        error, session, fetch = self.sessions.begin(
            value(body, "session_id", 0), epoch, [((t.topic, p.partition), p) for t in body.topics for p in t.partitions],
            [(t.topic, p) for t in value(body, "forgotten_topics_data", ()) or () for p in t.partitions])
        if error != ErrorCode.NONE:
            reply({"error_code": error, "session_id": 0, "responses": []})
            return
        incremental = session is not None and epoch > INITIAL_EPOCH
        wanted = [(topic, p) for (topic, _), p in fetch]

        def finish(answers):
            told = [r for r in answers if self.sessions.news(
                session, incremental, tuple(r.tp), (r.high_watermark, r.last_stable_offset, r.log_start_offset),
                bool(r.records), r.error)]
            return {"error_code": 0, "session_id": session.id if session else 0, "responses": _grouped(
                ((r.tp.topic, {"partition_index": r.tp.partition, "error_code": r.error,
                               "high_watermark": r.high_watermark, "last_stable_offset": r.last_stable_offset,
                               "log_start_offset": r.log_start_offset, "preferred_read_replica": -1,
                               "aborted_transactions": [{"producer_id": pid, "first_offset": first}
                                                        for pid, first in r.aborted]
                               if isolation == m.READ_COMMITTED else None, "records": r.records})
                 for r in told), name="topic")}

        def ask(wait: int):
            return [lambda c, t=t, p=p: m.FetchRequest(
                c, TopicPartition(t, p.partition), m.CONSUMER_REPLICA_ID, p.fetch_offset,
                value(p, "current_leader_epoch", -1), p.partition_max_bytes, wait, min_bytes,
                isolation_level=isolation, zero_copy=True) for t, p in wanted]

        def news(r) -> bool:
            return bool(r.records) or r.error != ErrorCode.NONE

        # A wire fetch answers once any of its partitions has data (Kafka's fetch.min.bytes
        # over the whole request), yet must name every partition it was asked for. So: a
        # look at every partition without waiting; if nothing is new, wait on all of
        # them and answer with the first news plus the others' first look.
        def looked(answers) -> None:
            if max_wait <= 0 or any(news(r) for r in answers):
                reply(finish(answers))
                return
            latest = {r.tp: r for r in answers}

            def waited(more):
                latest.update((r.tp, r) for r in more)
                return finish(list(latest.values()))

            self._ask(node, ask(max_wait), waited, reply, early=news)

        self._ask(node, ask(0), lambda answers: answers, looked)

    def _ListOffsets(self, node, body, version, reply) -> None:
        isolation = value(body, "isolation_level", 0)
        wanted = [(t.name, p) for t in body.topics for p in t.partitions]

        def finish(answers):
            return {"topics": _grouped((r.tp.topic, {"partition_index": r.tp.partition, "error_code": r.error,
                                                     "timestamp": r.timestamp, "offset": r.offset,
                                                     "leader_epoch": r.leader_epoch}) for r in answers)}

        self._ask(node, [lambda c, t=t, p=p: m.ListOffsetsRequest(
            c, TopicPartition(t, p.partition_index), _timestamp(p.timestamp), value(p, "current_leader_epoch", -1), isolation)
            for t, p in wanted], finish, reply)

    def _OffsetForLeaderEpoch(self, node, body, version, reply) -> None:
        wanted = [(t.topic, p) for t in body.topics for p in t.partitions]

        def finish(answers):
            return {"topics": _grouped(((r.tp.topic, {"error_code": r.error, "partition": r.tp.partition,
                                                      "leader_epoch": r.leader_epoch, "end_offset": r.end_offset})
                                        for r in answers), name="topic")}

        self._ask(node, [lambda c, t=t, p=p: m.OffsetsForLeaderEpochRequest(
            c, TopicPartition(t, p.partition), m.CONSUMER_REPLICA_ID, p.current_leader_epoch, p.leader_epoch)
            for t, p in wanted], finish, reply)

    def _CreateTopics(self, node, body, version, reply) -> None:
        topics = list(body.topics)
        refused = {t.name: why for t in topics if (why := _refusal(t)) is not None}
        asked = [] if value(body, "validate_only", False) else [t for t in topics if t.name not in refused]

        def finish(answers):
            by_name = {t.name: (r.error, r.message or None) for t, r in zip(asked, answers, strict=True)}
            out = []
            for t in topics:  # (validate_only: what would be refused, the rest fine)
                error, message = refused.get(t.name) or by_name.get(t.name, (ErrorCode.NONE, None))
                out.append({"name": t.name, "error_code": error, "error_message": message,
                            "num_partitions": t.num_partitions, "replication_factor": t.replication_factor})
            return {"topics": out}

        # Each topic is answered on its own, as Kafka does; a refused one never reaches the
        # controller. From the gateway's node: the controller may live in another process,
        # which knows where gateways are but not this broker's client connections.
        self._ask(self.node, [lambda c, t=t: m.CreateTopicRequest(
            c, t.name, t.num_partitions, t.replication_factor, configs=_topic_overrides(t),
            assignment=tuple(tuple(a.broker_ids) for a in sorted(value(t, "assignments", ()) or (),
                                                                 key=lambda a: a.partition_index)))
            for t in asked], finish, reply, to=self.controller, client=node)

    def _DeleteTopics(self, node, body, version, reply) -> None:
        names = list(body.topic_names)
        self._ask(self.node, [lambda c, t=t: m.DeleteTopicRequest(c, t) for t in names],
                  lambda answers: {"responses": [{"name": t, "error_code": r.error, "error_message": r.message or None}
                                                 for t, r in zip(names, answers, strict=True)]},
                  reply, to=self.controller, client=node)

    def _CreatePartitions(self, node, body, version, reply) -> None:
        topics = list(body.topics)
        if body.validate_only:
            reply({"results": [{"name": t.name, "error_code": 0} for t in topics]})
            return
        self._ask(self.node, [lambda c, t=t: m.CreatePartitionsRequest(
            c, t.name, t.count, tuple(tuple(a.broker_ids) for a in t.assignments or ())) for t in topics],
                  lambda answers: {"results": [{"name": t.name, "error_code": r.error,
                                                "error_message": r.message or None}
                                               for t, r in zip(topics, answers, strict=True)]},
                  reply, to=self.controller, client=node)

    def _DescribeConfigs(self, node, body, version, reply) -> None:
        """Broker resources: every broker key as this broker runs it. Topic resources:
        every topic config, the topic's override or what it inherits, with its source."""
        resources = list(body.resources)
        topics = tuple(r.resource_name for r in resources if r.resource_type == TOPIC_RESOURCE)

        def finish(answers):
            known = {pm.tp.topic: {} for pm in answers[0].partitions} if answers else {}
            known.update({t: dict(configs) for t, configs in (answers[0].topic_configs if answers else ())})
            return {"results": [self._describe(node, r, known) for r in resources]}

        self._ask(node, [lambda c: m.MetadataRequest(c, topics)] if topics else [], finish, reply)

    def _describe(self, node, resource, known_topics: dict[str, dict[str, str]]) -> dict:
        keys = resource.configuration_keys
        on = "CLUSTER" if resource.resource_type == BROKER_RESOURCE else "TOPIC"
        if resource.resource_type in (BROKER_RESOURCE, TOPIC_RESOURCE) and not self._may(
                node, "DESCRIBE_CONFIGS", on, resource.resource_name):
            return {"error_code": CLUSTER_DENIED if on == "CLUSTER" else TOPIC_DENIED,
                    "resource_type": resource.resource_type, "resource_name": resource.resource_name}
        if resource.resource_type == BROKER_RESOURCE:
            if resource.resource_name not in ("", str(self.broker_id)):
                return {"error_code": ErrorCode.INVALID_REQUEST, "resource_type": resource.resource_type,
                        "resource_name": resource.resource_name, "error_message": "another broker's configuration"}
            host, port = self.endpoints[self.broker_id]
            listener = f"PLAINTEXT://{host}:{port}"  # (how serve runs, not keys a user sets)
            rows = [(k.name, self.settings[k.name], False, k.default, k.type) for k in BROKER_KEYS] + [
                ("broker.id", self.broker_id, False, None, "int"), ("node.id", self.broker_id, False, None, "int"),
                ("listeners", listener, False, None, "string"), ("advertised.listeners", listener, False, None, "string")]
        elif resource.resource_type == TOPIC_RESOURCE:
            if resource.resource_name not in known_topics:
                return {"error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "resource_type": resource.resource_type,
                        "resource_name": resource.resource_name}
            rows = topic_config.describe(self.settings, known_topics[resource.resource_name])
        else:
            return {"error_code": ErrorCode.INVALID_REQUEST, "resource_type": resource.resource_type,
                    "resource_name": resource.resource_name, "error_message": "unsupported resource type"}
        return {"error_code": 0, "resource_type": resource.resource_type, "resource_name": resource.resource_name,
                "configs": [{"name": name, "value": _config_text(v), "read_only": resource.resource_type != TOPIC_RESOURCE,
                             "is_sensitive": False, "config_type": CONFIG_TYPES.get(kind, 0),
                             "config_source": DYNAMIC_TOPIC_CONFIG if overridden
                             else DEFAULT_CONFIG if v == default else STATIC_BROKER_CONFIG}
                            for name, v, overridden, default, kind in rows if keys is None or name in keys]}

    def _AlterConfigs(self, node, body, version, reply) -> None:
        """The complete set of a topic's overrides, replaced (the incremental API's SETs)."""
        self._alter(node, body, [[(c.name, SET, c.value) for c in r.configs] for r in body.resources], True, reply)

    def _IncrementalAlterConfigs(self, node, body, version, reply) -> None:
        self._alter(node, body, [[(c.name, c.config_operation, c.value) for c in r.configs] for r in body.resources],
                    False, reply)

    def _alter(self, node, body, ops: list[list[tuple]], replace: bool, reply: Reply) -> None:
        """Topic resources go to the controller, which checks, stores and spreads them;
        broker configs are static here (Kafka's answer for a key that is not dynamic)."""
        resources = list(body.resources)
        asked = [(r, tuple(o)) for r, o in zip(resources, ops, strict=True) if r.resource_type == TOPIC_RESOURCE]

        def refused(r) -> dict:
            what = "broker configs cannot be updated dynamically in kafkaproof serve" \
                if r.resource_type == BROKER_RESOURCE else "unsupported resource type"
            denied = r.resource_type == BROKER_RESOURCE and not self._may(node, "ALTER_CONFIGS", "CLUSTER")
            return {"error_code": CLUSTER_DENIED if denied else ErrorCode.INVALID_REQUEST, "error_message": what,
                    "resource_type": r.resource_type, "resource_name": r.resource_name}

        def finish(answers):
            by = {r.resource_name: a for (r, _), a in zip(asked, answers, strict=True)}
            return {"responses": [{"error_code": by[r.resource_name].error,
                                   "error_message": by[r.resource_name].message or None,
                                   "resource_type": r.resource_type, "resource_name": r.resource_name}
                                  if r.resource_type == TOPIC_RESOURCE else refused(r) for r in resources]}

        self._ask(self.node, [lambda c, r=r, o=o: m.AlterTopicConfigRequest(c, r.resource_name, o, replace,
                                                                             body.validate_only)
                              for r, o in asked], finish, reply, to=self.controller, client=node)

    def _DeleteRecords(self, node, body, version, reply) -> None:
        wanted = [(t.name, p) for t in body.topics for p in t.partitions]

        def finish(answers):
            return {"topics": _grouped((r.tp.topic, {"partition_index": r.tp.partition, "error_code": r.error,
                                                     "low_watermark": r.low_watermark}) for r in answers)}

        self._ask(node, [lambda c, t=t, p=p: m.DeleteRecordsRequest(c, TopicPartition(t, p.partition_index), p.offset)
                         for t, p in wanted], finish, reply)

    def _DescribeCluster(self, node, body, version, reply) -> None:
        def finish(answers):
            meta = self._brokers(answers[0])
            return {"error_code": 0, "cluster_id": meta["cluster_id"], "controller_id": meta["controller_id"],
                    "brokers": [{"broker_id": b["node_id"], "host": b["host"], "port": b["port"]}
                                for b in meta["brokers"]],
                    "cluster_authorized_operations": -2**31}

        self._ask(node, [lambda c: m.MetadataRequest(c, ())], finish, reply)

    # -- ACLs (KIP-11, KIP-290): kept by the controller, described from this broker's copy ------

    def _DescribeAcls(self, node, body, version, reply) -> None:
        if not self.guard.enabled:
            return reply({"error_code": ErrorCode.SECURITY_DISABLED, "error_message": NO_AUTHORIZER})
        f = _acl_filter(body)
        found: dict[tuple, list] = {}
        for a in self.guard.authorizer().bindings():
            if acl.matches_filter(a, f):
                found.setdefault((a.resource_type, a.resource_name, a.pattern_type), []).append(a)
        reply({"error_code": 0, "resources": [
            {"resource_type": acl.RESOURCE_TYPES[rtype], "resource_name": name, "pattern_type": acl.PATTERNS[pattern],
             "acls": [{"principal": a.principal, "host": a.host, "operation": acl.OPERATIONS[a.operation],
                       "permission_type": acl.PERMISSIONS[a.permission]} for a in acls]}
            for (rtype, name, pattern), acls in found.items()]})

    def _CreateAcls(self, node, body, version, reply) -> None:
        creations = [acl.AclBinding(c.principal, c.host, acl.by_code(acl.OPERATIONS, c.operation),
                                    acl.by_code(acl.PERMISSIONS, c.permission_type),
                                    acl.by_code(acl.RESOURCE_TYPES, c.resource_type),
                                    acl.by_code(acl.PATTERNS, value(c, "resource_pattern_type", 3)), c.resource_name)
                     for c in body.creations]
        refused = self._acl_refusal(node)

        def problem(a: acl.AclBinding) -> tuple[ErrorCode, str] | None:
            why = acl.invalid(a)
            return refused or (None if why is None else (ErrorCode.INVALID_REQUEST, why))

        problems = [problem(a) for a in creations]
        valid = tuple(a for a, p in zip(creations, problems, strict=True) if p is None)

        def finish(answers):
            done = (answers[0].error, answers[0].message or None) if answers else (ErrorCode.NONE, None)
            return {"results": [{"error_code": (p or done)[0], "error_message": (p or done)[1]} for p in problems]}

        self._ask(self.node, [lambda c: m.AlterAclsRequest(c, create=valid)] if valid else [], finish, reply,
                  to=self.controller, client=node)

    def _DeleteAcls(self, node, body, version, reply) -> None:
        filters = tuple(_acl_filter(f) for f in body.filters)
        refused = self._acl_refusal(node)
        if refused:
            return reply({"filter_results": [{"error_code": refused[0], "error_message": refused[1]} for _ in filters]})

        def finish(answers):
            r = answers[0]
            return {"filter_results": [{"error_code": r.error, "error_message": r.message or None, "matching_acls": [
                {"error_code": 0, "resource_type": acl.RESOURCE_TYPES[a.resource_type], "resource_name": a.resource_name,
                 "pattern_type": acl.PATTERNS[a.pattern_type], "principal": a.principal, "host": a.host,
                 "operation": acl.OPERATIONS[a.operation], "permission_type": acl.PERMISSIONS[a.permission]}
                for a in (r.deleted[i] if i < len(r.deleted) else ())]} for i in range(len(filters))]}

        self._ask(self.node, [lambda c: m.AlterAclsRequest(c, delete=filters)] if filters else [], finish, reply,
                  to=self.controller, client=node)

    def _acl_refusal(self, node) -> tuple[ErrorCode, str] | None:
        if not self.guard.enabled:
            return ErrorCode.SECURITY_DISABLED, NO_AUTHORIZER
        if not self._may(node, "ALTER", "CLUSTER"):
            return CLUSTER_DENIED, "changing ACLs needs ALTER on the cluster"
        return None

    # -- cluster admin: reassignments, elections, log dirs, producers --------------------------

    def _AlterPartitionReassignments(self, node, body, version, reply) -> None:
        asked = [(TopicPartition(t.name, p.partition_index), p.replicas) for t in body.topics for p in t.partitions]

        def finish(answers):
            return {"error_code": 0, "responses": _grouped(
                (tp.topic, {"partition_index": tp.partition, "error_code": r.error,
                            "error_message": r.message or None}) for (tp, _), r in zip(asked, answers, strict=True))}

        self._ask(self.node, [lambda c, tp=tp, rs=rs: m.ReassignPartitionRequest(
            c, tp, None if rs is None else tuple(rs)) for tp, rs in asked], finish, reply, to=self.controller, client=node)

    def _ListPartitionReassignments(self, node, body, version, reply) -> None:
        tps = None if body.topics is None else tuple(TopicPartition(t.name, p) for t in body.topics
                                                     for p in t.partition_indexes)

        def finish(answers):
            return {"error_code": 0, "topics": _grouped(
                (st.tp.topic, {"partition_index": st.tp.partition, "replicas": list(st.replicas),
                               "adding_replicas": list(st.adding), "removing_replicas": list(st.removing)})
                for st in answers[0].ongoing)}

        self._ask(self.node, [lambda c: m.ListReassignmentsRequest(c, tps)], finish, reply, to=self.controller, client=node)

    def _ElectLeaders(self, node, body, version, reply) -> None:
        tps = None if body.topic_partitions is None else tuple(
            TopicPartition(t.topic, p) for t in body.topic_partitions for p in t.partitions)

        def finish(answers):
            return {"error_code": 0, "replica_election_results": _grouped(
                ((tp.topic, {"partition_id": tp.partition, "error_code": error, "error_message": message or None})
                 for tp, error, message in answers[0].results), name="topic", items="partition_result")}

        self._ask(self.node, [lambda c: m.ElectLeadersRequest(c, tps, value(body, "election_type", 0) == 1)],
                  finish, reply, to=self.controller, client=node)

    def _DescribeLogDirs(self, node, body, version, reply) -> None:
        wanted = None if body.topics is None else {(t.topic, p) for t in body.topics for p in t.partitions}

        def finish(answers):
            r = answers[0]
            return {"error_code": 0, "results": [{"error_code": 0, "log_dir": r.log_dir, "topics": _grouped(
                (tp.topic, {"partition_index": tp.partition, "partition_size": size, "offset_lag": 0,
                            "is_future_key": False})
                for tp, size in r.sizes if wanted is None or tuple(tp) in wanted)}]}

        self._ask(node, [lambda c: m.DescribeLogDirsRequest(c)], finish, reply)

    def _DescribeProducers(self, node, body, version, reply) -> None:
        tps = [TopicPartition(t.name, p) for t in body.topics for p in t.partition_indexes]

        def finish(answers):
            return {"topics": _grouped((r.tp.topic, {
                "partition_index": r.tp.partition, "error_code": r.error, "active_producers": [
                    {"producer_id": pid, "producer_epoch": epoch, "last_sequence": seq, "last_timestamp": -1,
                     "coordinator_epoch": coordinator_epoch, "current_txn_start_offset": txn_start}
                    for pid, epoch, seq, coordinator_epoch, txn_start in r.producers]}) for r in answers)}

        self._ask(node, [lambda c, tp=tp: m.DescribeProducersRequest(c, tp) for tp in tps], finish, reply)

    def _ListTransactions(self, node, body, version, reply) -> None:
        def finish(answers):
            return {"error_code": 0, "unknown_state_filters": [], "transaction_states": [
                {"transactional_id": tid, "producer_id": pid, "transaction_state": state}
                for tid, pid, state in answers[0].transactions
                if self._may(node, "DESCRIBE", "TRANSACTIONAL_ID", tid)]}

        self._ask(node, [lambda c: m.ListTransactionsRequest(c, tuple(body.state_filters or ()),
                                                             tuple(body.producer_id_filters or ()))], finish, reply)

    def _DescribeTransactions(self, node, body, version, reply) -> None:
        tids = list(body.transactional_ids)

        def finish(answers):
            return {"transaction_states": [{
                "error_code": r.error, "transactional_id": tid, "transaction_state": r.state,
                "transaction_timeout": timedelta(milliseconds=r.timeout_ms),
                # (an error entry carries the schema's default, 0, as Kafka's does)
                "transaction_start_time": datetime.fromtimestamp(
                    (r.started if r.error == ErrorCode.NONE else 0) / 1000, tz=UTC),
                "producer_id": r.producer_id, "producer_epoch": r.producer_epoch,
                "topics": _grouped(((tp.topic, tp.partition) for tp in r.partitions), name="topic")}
                for tid, r in zip(tids, answers, strict=True)]}

        self._ask(node, [lambda c, t=t: m.DescribeTransactionRequest(c, t) for t in tids], finish, reply)

    def _DescribeTopicPartitions(self, node, body, version, reply) -> None:
        """Metadata's answer in KIP-966's shape, with the eligible leader replicas and the
        last known leader (LastKnownElr)."""
        names, denied = self._described(node, tuple(t.name for t in body.topics))

        def finish(answers):
            r = answers[0]
            by: dict[str, list] = {}
            for pm in sorted(self._visible(node, r.partitions), key=lambda pm: pm.tp):
                by.setdefault(pm.tp.topic, []).append({
                    "error_code": 0, "partition_index": pm.tp.partition, "leader_id": pm.leader,
                    "leader_epoch": pm.leader_epoch, "replica_nodes": list(pm.replicas), "isr_nodes": list(pm.isr),
                    "eligible_leader_replicas": list(pm.elr), "last_known_elr": list(pm.last_known_elr),
                    "offline_replicas": [b for b in pm.replicas if b not in r.brokers]})
            return {"topics": [{"error_code": 0 if t in by else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, "name": t,
                                "topic_id": uuid.UUID(int=0), "is_internal": t.startswith("__"),
                                "partitions": by.get(t, []), "topic_authorized_operations": -2**31}
                               for t in (names or tuple(by))] + [
                {"error_code": TOPIC_DENIED, "name": t, "topic_id": uuid.UUID(int=0), "partitions": [],
                 "topic_authorized_operations": -2**31} for t in denied], "next_cursor": None}

        self._ask(node, [lambda c: m.MetadataRequest(c, names if names or denied else None)], finish, reply)

    def _brokers(self, r: m.MetadataResponse) -> dict:
        """The live brokers as clients reach them, and who answers as controller."""
        live = [b for b in sorted(self.endpoints) if b in r.brokers] or sorted(self.endpoints)
        return {"brokers": [{"node_id": b, "host": self.endpoints[b][0], "port": self.endpoints[b][1]} for b in live],
                "cluster_id": self.cluster_id, "controller_id": live[0]}

    def _create(self, topic: str, partitions: int, replication_factor: int, if_absent: bool) -> None:
        """Ask the controller for a topic, not waiting for its answer."""
        self._ask(self.node, [lambda c: m.CreateTopicRequest(c, topic, partitions, replication_factor, if_absent)],
                  lambda answers: None, lambda values: None, to=self.controller)

    # -- groups ------------------------------------------------------------------------------

    def _FindCoordinator(self, node, body, version, reply) -> None:
        key_type = value(body, "key_type", 0)
        keys = list(value(body, "coordinator_keys", ()) or ()) if version >= 4 else [body.key]
        internal, parts, rf = ((TXN_STATE_TOPIC, "transaction_state_partitions", "transaction_state_replication_factor")
                               if key_type == m.TRANSACTION else
                               (OFFSETS_TOPIC, "offsets_topic_partitions", "offsets_topic_replication_factor"))
        self._ensure_internal(internal, parts, rf)

        def finish(answers):
            found = []
            for key, r in zip(keys, answers, strict=True):
                host, port = self.endpoints.get(r.node_id, ("", -1))
                found.append({"key": key, "node_id": r.node_id, "host": host, "port": port, "error_code": r.error})
            if version >= 4:
                return {"coordinators": found}
            return {k: v for k, v in found[0].items() if k != "key"}

        self._ask(node, [lambda c, k=k: m.FindCoordinatorRequest(c, k, key_type) for k in keys], finish, reply)

    def _ensure_internal(self, topic: str, partitions_attr: str, rf_attr: str) -> None:
        """Kafka creates __consumer_offsets / __transaction_state on the first FindCoordinator."""
        self._create(topic, getattr(self.config, partitions_attr), getattr(self.config, rf_attr), if_absent=True)

    def _JoinGroup(self, node, body, version, reply) -> None:
        protocols = tuple(p.name for p in body.protocols)
        metadata = tuple((p.name, bytes(p.metadata or b"")) for p in body.protocols)
        topics, owned = _decode_subscription(metadata[0][1] if metadata else b"")
        session = value(body, "session_timeout")
        rebalance = value(body, "rebalance_timeout", session) if version >= 1 else session

        def finish(answers):
            r = answers[0]
            raw = dict(r.member_metadata)  # as the members sent them; else (a simulated member) encoded
            return {"error_code": r.error, "generation_id": r.generation, "protocol_type": "consumer",
                    # (nullable only from v7: older versions answer "" with an error)
                    "protocol_name": r.protocol or (None if version >= 7 else ""), "leader": r.leader,
                    "member_id": r.member_id,
                    "members": [{"member_id": mid, "metadata": raw.get(mid) or _encode_subscription(subs, held)}
                                for mid, subs, held in r.members]}

        self._ask(node, [lambda c: m.JoinGroupRequest(
            c, body.group_id, body.member_id, session, rebalance, protocols, topics, owned,
            value(body, "group_instance_id"), metadata)], finish, reply)

    def _SyncGroup(self, node, body, version, reply) -> None:
        raw = tuple((a.member_id, bytes(a.assignment or b"")) for a in body.assignments)
        assignments = tuple((mid, _decode_assignment(data)) for mid, data in raw)

        def finish(answers):
            r = answers[0]
            return {"error_code": r.error, "protocol_type": "consumer",
                    "protocol_name": value(body, "protocol_name"),
                    "assignment": r.raw_assignment or _encode_assignment(r.assignment)}

        self._ask(node, [lambda c: m.SyncGroupRequest(c, body.group_id, body.generation_id, body.member_id,
                                                      assignments, raw)], finish, reply)

    def _Heartbeat(self, node, body, version, reply) -> None:
        self._ask(node, [lambda c: m.HeartbeatRequest(c, body.group_id, body.generation_id, body.member_id)],
                  lambda a: {"error_code": a[0].error}, reply)

    def _LeaveGroup(self, node, body, version, reply) -> None:
        members = [x.member_id for x in body.members] if version >= 3 else [body.member_id]

        def finish(answers):
            if version >= 3:
                return {"error_code": 0, "members": [{"member_id": mid, "error_code": r.error}
                                                     for mid, r in zip(members, answers, strict=True)]}
            return {"error_code": answers[0].error}

        self._ask(node, [lambda c, mid=mid: m.LeaveGroupRequest(c, body.group_id, mid) for mid in members],
                  finish, reply)

    def _DescribeGroups(self, node, body, version, reply) -> None:
        groups = list(body.groups)

        def member(mb: m.GroupMemberSummary) -> dict:
            return {"member_id": mb.member_id, "group_instance_id": None, "client_id": mb.client,
                    "client_host": "", "member_metadata": mb.metadata or (
                        _encode_subscription(mb.subscription, ()) if mb.subscription else b""),
                    "member_assignment": mb.assignment or (_encode_assignment(mb.assigned) if mb.assigned else b"")}

        def finish(answers):
            return {"groups": [{"error_code": r.error, "group_id": group, "group_state": r.state,
                                "protocol_type": r.protocol_type, "protocol_data": r.protocol,
                                "members": [member(mb) for mb in r.members],
                                "authorized_operations": -2**31}  # not asked for / not computed
                               for group, r in zip(groups, answers, strict=True)]}

        self._ask(node, [lambda c, g=g: m.DescribeGroupRequest(c, g) for g in groups], finish, reply)

    def _DeleteGroups(self, node, body, version, reply) -> None:
        groups = list(body.groups_names)
        self._ask(node, [lambda c, g=g: m.DeleteGroupRequest(c, g) for g in groups],
                  lambda answers: {"results": [{"group_id": g, "error_code": r.error}
                                               for g, r in zip(groups, answers, strict=True)]}, reply)

    def _OffsetDelete(self, node, body, version, reply) -> None:
        tps = tuple(TopicPartition(t.name, p.partition_index) for t in body.topics for p in t.partitions)

        def finish(answers):
            r = answers[0]
            return {"error_code": r.error, "topics": _grouped(
                (tp.topic, {"partition_index": tp.partition, "error_code": error}) for tp, error in r.errors)}

        self._ask(node, [lambda c: m.OffsetDeleteRequest(c, body.group_id, tps)], finish, reply)

    def _ListGroups(self, node, body, version, reply) -> None:
        states = tuple(value(body, "states_filter", ()) or ())

        def finish(answers):
            r = answers[0]
            # Kafka: DESCRIBE on the cluster lists every group, else those the client may DESCRIBE.
            every = self._may(node, "DESCRIBE", "CLUSTER")
            return {"error_code": r.error, "groups": [{"group_id": g, "protocol_type": t, "group_state": state}
                                                      for g, t, state in r.groups
                                                      if every or self._may(node, "DESCRIBE", "GROUP", g)]}

        self._ask(node, [lambda c: m.ListGroupsRequest(c, states)], finish, reply)

    def _OffsetCommit(self, node, body, version, reply) -> None:
        offsets = tuple((TopicPartition(t.name, p.partition_index), p.committed_offset)
                        for t in body.topics for p in t.partitions)
        details = _offset_details(body)
        generation = value(body, "generation_id_or_member_epoch", value(body, "generation_id", -1))
        topics = tuple(sorted({tp.topic for tp, _ in offsets}))
        if not self._may(node, "READ", "GROUP", body.group_id):
            return reply(_per_partition(offsets, ErrorCode.GROUP_AUTHORIZATION_FAILED))
        denied = {t for t in topics if not self._may(node, "READ", "TOPIC", t)}

        # Kafka answers UNKNOWN_TOPIC_OR_PARTITION for a partition its metadata does not
        # have (KafkaApis.handleOffsetCommitRequest) and commits the others; a topic the
        # client may not READ is TOPIC_AUTHORIZATION_FAILED, the others committed.
        def known(answers) -> None:
            have = {pm.tp for pm in answers[0].partitions if pm.tp.topic not in denied}
            commit = tuple((tp, o) for tp, o in offsets if tp in have)

            def finish(a):
                error = a[0].error if a else ErrorCode.NONE
                return {"topics": _grouped((tp.topic, {"partition_index": tp.partition, "error_code": error
                                                       if tp in have else TOPIC_DENIED if tp.topic in denied
                                                       else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION})
                                           for tp, _ in offsets)}

            self._ask(node, [lambda c: m.OffsetCommitRequest(
                c, body.group_id, generation, body.member_id, commit, tuple(d for d in details if d[0] in have))]
                if commit else [], finish, reply)

        self._ask(node, [lambda c: m.MetadataRequest(c, topics)], known, lambda _: None)

    def _OffsetFetch(self, node, body, version, reply) -> None:
        tps = tuple(TopicPartition(t.name, p) for t in (body.topics or ()) for p in t.partition_indexes)

        def finish(answers):
            r = answers[0]
            got, details = dict(r.offsets), {tp: (epoch, meta) for tp, epoch, meta in r.details}
            # (a topic it may not DESCRIBE: named, TOPIC_AUTHORIZATION_FAILED; listed, left out)
            shown = tps or tuple(tp for tp in got if self._may(node, "DESCRIBE", "TOPIC", tp.topic))
            return {"error_code": r.error, "topics": _grouped(
                (tp.topic, {"partition_index": tp.partition, "committed_offset": got.get(tp, -1),
                            "committed_leader_epoch": details.get(tp, (-1, ""))[0],
                            "metadata": details.get(tp, (-1, ""))[1],
                            "error_code": r.error or (0 if self._may(node, "DESCRIBE", "TOPIC", tp.topic)
                                                     else TOPIC_DENIED)})
                for tp in shown)}

        self._ask(node, [lambda c: m.OffsetFetchRequest(c, body.group_id, tps, value(body, "require_stable", False))],
                  finish, reply)

    # -- transactions ------------------------------------------------------------------------

    def _InitProducerId(self, node, body, version, reply) -> None:
        self._ask(node, [lambda c: m.InitProducerIdRequest(c, body.transactional_id, value(body, "transaction_timeout"))],
                  lambda a: {"error_code": _fencing(a[0].error, version, 4), "producer_id": a[0].producer_id,
                             "producer_epoch": a[0].producer_epoch}, reply)

    def _AddPartitionsToTxn(self, node, body, version, reply) -> None:
        tps = tuple(TopicPartition(t.name, p) for t in body.v3_and_below_topics for p in t.partitions)

        def finish(answers):
            error = _fencing(answers[0].error, version, 2)
            return {"results_by_topic_v3_and_below": _grouped(
                ((tp.topic, {"partition_index": tp.partition, "partition_error_code": error if error != TOPIC_DENIED
                             # (Kafka: the denied partitions, and OPERATION_NOT_ATTEMPTED for the rest)
                             else error if not self._may(node, "WRITE", "TOPIC", tp.topic)
                             else ErrorCode.OPERATION_NOT_ATTEMPTED}) for tp in tps),
                items="results_by_partition")}

        self._ask(node, [lambda c: m.AddPartitionsToTxnRequest(
            c, body.v3_and_below_transactional_id, body.v3_and_below_producer_id, body.v3_and_below_producer_epoch,
            tps)], finish, reply)

    def _AddOffsetsToTxn(self, node, body, version, reply) -> None:
        self._ask(node, [lambda c: m.AddOffsetsToTxnRequest(c, body.transactional_id, body.producer_id,
                                                            body.producer_epoch, body.group_id)],
                  lambda a: {"error_code": _fencing(a[0].error, version, 2)}, reply)

    def _EndTxn(self, node, body, version, reply) -> None:
        # Below v5 the response carries no epoch: the client keeps its own (transaction
        # version 1), so its transaction ends without KIP-890's bump. From v5 (version 2) it
        # takes the bumped epoch - or a new producer id - from the answer.
        self._ask(node, [lambda c: m.EndTxnRequest(c, body.transactional_id, body.producer_id, body.producer_epoch,
                                                   body.committed, bump_epoch=version >= 5)],
                  lambda a: {"error_code": _fencing(a[0].error, version, 2), "producer_id": a[0].producer_id,
                             "producer_epoch": a[0].producer_epoch}, reply)

    def _TxnOffsetCommit(self, node, body, version, reply) -> None:
        offsets = tuple((TopicPartition(t.name, p.partition_index), p.committed_offset)
                        for t in body.topics for p in t.partitions)

        def commit(error: ErrorCode = ErrorCode.NONE) -> None:
            if error != ErrorCode.NONE:
                return reply(_per_partition(offsets, _fencing(error, version, 2)))
            self._ask(node, [lambda c: m.TxnOffsetCommitRequest(
                c, body.transactional_id, body.group_id, body.producer_id, body.producer_epoch,
                value(body, "generation_id", -1), value(body, "member_id", ""), offsets, _offset_details(body))],
                lambda a: _per_partition(offsets, a[0].error), reply)

        def add_offsets(found: m.FindCoordinatorResponse) -> None:
            if found.error != ErrorCode.NONE:
                return commit(found.error)
            self._ask(node, [lambda c: m.AddOffsetsToTxnRequest(c, body.transactional_id, body.producer_id,
                                                                body.producer_epoch, body.group_id)],
                      lambda a: a[0].error, commit, to=m.broker_node(found.node_id))

        if version < 5:
            return commit()
        # v5 is transaction version 2's (KIP-890 part 2): its client sent no AddOffsetsToTxn, so
        # the group's offsets partition joins the transaction here, at the transaction coordinator.
        self._ask(node, [lambda c: m.FindCoordinatorRequest(c, body.transactional_id, m.TRANSACTION)],
                  lambda a: a[0], add_offsets)


NO_AUTHORIZER = "no authorizer is configured (authorizer.class.name)"


def _acl_filter(f) -> acl.AclBinding:
    """DescribeAcls' request or one DeleteAcls filter, as a filter binding (v0 has no pattern type: LITERAL)."""
    return acl.AclBinding(f.principal_filter, f.host_filter, acl.by_code(acl.OPERATIONS, f.operation),
                          acl.by_code(acl.PERMISSIONS, f.permission_type),
                          acl.by_code(acl.RESOURCE_TYPES, f.resource_type_filter),
                          acl.by_code(acl.PATTERNS, value(f, "pattern_type_filter", 3)), f.resource_name_filter)


def _offset_details(body) -> tuple[tuple[TopicPartition, int, str], ...]:
    """(partition, leader epoch, metadata string) of an OffsetCommit or TxnOffsetCommit."""
    return tuple((TopicPartition(t.name, p.partition_index), value(p, "committed_leader_epoch", -1),
                  p.committed_metadata or "") for t in body.topics for p in t.partitions)


def _fencing(error: ErrorCode, version: int, since: int) -> ErrorCode:
    """PRODUCER_FENCED (90) exists for a request from version `since` on (KIP-588: InitProducerId
    v4, AddPartitionsToTxn / AddOffsetsToTxn / EndTxn v2); older clients get
    INVALID_PRODUCER_EPOCH (47), which they treat as fenced."""
    return ErrorCode.INVALID_PRODUCER_EPOCH if error == ErrorCode.PRODUCER_FENCED and version < since else error


def api_versions_response(error: ErrorCode = ErrorCode.NONE, transaction_version: int = 2) -> dict:
    """With the finalized features (KIP-584, v3's tagged fields): `transaction.version` 2
    tells a client it may use KIP-890 part 2 - Produce v12 without AddPartitionsToTxn,
    EndTxn v5 answering the bumped epoch, TxnOffsetCommit v5 without AddOffsetsToTxn.
    Clients that do not look (or speak older versions) stay on version 1, per client."""
    return {"error_code": error, "api_keys": [{"api_key": k, "min_version": lo, "max_version": hi}
                                              for k, (_, lo, hi) in sorted(APIS.items())],
            "supported_features": [{"name": "transaction.version", "min_version": 0, "max_version": 2}],
            "finalized_features_epoch": 1,
            "finalized_features": [{"name": "transaction.version", "max_version_level": transaction_version,
                                    "min_version_level": transaction_version}]}


def _config_text(v) -> str | None:
    if isinstance(v, list | tuple):
        return ",".join(map(str, v))  # Kafka's list configs: comma-separated
    return None if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def _per_partition(offsets, error: ErrorCode) -> dict:
    return {"topics": _grouped((tp.topic, {"partition_index": tp.partition, "error_code": error}) for tp, _ in offsets)}


def _grouped(rows, name: str = "name", items: str = "partitions") -> list[dict]:
    """(topic, partition entry) rows -> Kafka's per-topic lists, in first-seen order."""
    by: dict[str, list] = {}
    for topic, row in rows:
        by.setdefault(topic, []).append(row)
    return [{name: t, items: ps} for t, ps in by.items()]


def _timestamp(ts) -> int:
    """ListOffsets' timestamp as milliseconds: a time, or one of the special values up to
    v10 (-1 latest, -2 earliest, -3 max, -4 earliest local, -5 latest tiered); others
    are answered as LATEST."""
    if hasattr(ts, "timestamp"):
        ts = round(ts.timestamp() * 1000)
    return ts if ts >= m.LATEST_TIERED_TIMESTAMP else m.LATEST_TIMESTAMP


def _refusal(topic) -> tuple[ErrorCode, str] | None:
    """Why a CreateTopics entry is refused before the controller sees it, or None:
    an invalid name (Topic.validate), or a config name no topic has (Kafka's
    "Unknown topic config name")."""
    if not _valid_topic(topic.name):
        return ErrorCode.INVALID_TOPIC_EXCEPTION, f"invalid topic name {topic.name!r}"
    if value(topic, "assignments", ()) and (topic.num_partitions != -1 or topic.replication_factor != -1):
        # (CreateTopicsRequest: assignments leave both counts at -1)
        return ErrorCode.INVALID_REQUEST, "both numPartitions or replicationFactor and replicasAssignments were set"
    problem = topic_config.refusal(dict(_topic_overrides(topic)))
    return (ErrorCode.INVALID_CONFIG, problem) if problem is not None else None


def _topic_overrides(topic) -> m.Configs:
    return tuple((c.name, c.value) for c in (value(topic, "configs", ()) or ()) if c.value is not None)


def _valid_topic(name: str) -> bool:
    # Kafka's Topic.validate: 1-249 characters of [a-zA-Z0-9._-], not "." or ".."
    return (0 < len(name) <= 249 and name not in (".", "..")
            and all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in name))


# -- the consumer protocol's embedded bytes (ConsumerProtocolSubscription / Assignment) --------


def _decode_subscription(data: bytes) -> tuple[tuple[str, ...], tuple[TopicPartition, ...]]:
    """What a simulated leader needs of a wire member's metadata: its topics and what it
    owns. Wire leaders get the bytes themselves, so metadata this cannot read (another
    assignor's format) costs nothing: no topics, nothing owned."""
    try:
        return _parse_subscription(data)
    except Exception:  # noqa: BLE001 - opaque to Kafka's coordinator; a hint to ours
        return (), ()


def _parse_subscription(data: bytes) -> tuple[tuple[str, ...], tuple[TopicPartition, ...]]:
    if len(data) < 2:
        return (), ()
    (version,) = struct.unpack_from(">h", data)
    if version == 0:
        from kio.schema.consumer_protocol_subscription.v0.data import (
            ConsumerProtocolSubscription as V0,
        )
        sub, _ = entity_reader(V0)(data, 2)
        return tuple(sub.topics), ()
    sub, _ = entity_reader(ConsumerProtocolSubscription)(data, 2)  # later versions only add fields
    return tuple(sub.topics), tuple(TopicPartition(o.topic, p) for o in sub.owned_partitions for p in o.partitions)


def _versioned(cls, version: int, values: dict) -> bytes:
    """The consumer protocol's embedded bytes: an int16 version, then the entity."""
    out = io.BytesIO()
    out.write(struct.pack(">h", version))
    entity_writer(cls)(out, make(cls, values))
    return out.getvalue()


def _by_topic(tps) -> list[dict]:
    return _grouped(((tp.topic, tp.partition) for tp in sorted(tps)), name="topic")


def _encode_subscription(topics, owned) -> bytes:
    return _versioned(ConsumerProtocolSubscription, 1, {"topics": list(topics), "owned_partitions": _by_topic(owned)})


def _decode_assignment(data: bytes) -> tuple[TopicPartition, ...]:
    """A wire leader's assignment as partitions, for the coordinator's record (the member
    gets the bytes as sent); bytes of another format are recorded as nothing."""
    if len(data) < 2:
        return ()
    try:
        a, _ = entity_reader(ConsumerProtocolAssignment)(data, 2)  # every version starts with v0's fields
    except Exception:  # noqa: BLE001
        return ()
    return tuple(TopicPartition(t.topic, p) for t in a.assigned_partitions for p in t.partitions)


def _encode_assignment(tps) -> bytes:
    return _versioned(ConsumerProtocolAssignment, 0, {"assigned_partitions": _by_topic(tps)})
