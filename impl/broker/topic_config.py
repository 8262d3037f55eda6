"""Per-topic configs: Kafka's topic-level names (LogConfig's), each inheriting the broker's
setting unless the topic overrides it (CreateTopics' configs, AlterConfigs,
IncrementalAlterConfigs). Overrides travel as Kafka does keep them: strings, by name,
in the cluster metadata; each broker turns them into its partitions' settings here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from kafkaproof.impl.config import LONG_MAX, ConfigError, Key, at_least, one_of, resolve
from kafkaproof.impl.coordinator.group import OFFSETS_TOPIC
from kafkaproof.impl.coordinator.transaction import TXN_STATE_TOPIC
from kafkaproof.impl.storage.config import HOUR_MS, LogConfig, ms_or_hours

COMPACT, DELETE = "compact", "delete"


def _policies(v) -> str | None:
    if v is None:
        return None
    bad = [p for p in v if p not in (COMPACT, DELETE)]
    return f"must be a list of {COMPACT}, {DELETE}" if bad or not v else None


def _ratio(v) -> str | None:
    return None if v is None or 0 <= v <= 1 else "must be between 0 and 1"


@dataclass(frozen=True)
class TopicKey:
    key: Key  # the topic-level name and type; its default None means "inherit"
    inherited: Callable[[dict], object]  # its value from the broker's settings (resolved BROKER_KEYS)
    default: object  # Kafka's own default: DescribeConfigs tells it apart from a broker's setting
    log_field: str | None = None  # the LogConfig field it sets, if the log acts on it


def _k(name: str, type_: str, inherited, default, log_field=None, check=None, doc="") -> TopicKey:
    return TopicKey(Key(name, type_, None, doc, check), inherited, default, log_field)


# Kafka's topic configs (TopicConfig / LogConfig), the ones a broker reads.
TOPIC_KEYS: tuple[TopicKey, ...] = (
    _k("cleanup.policy", "list", lambda s: [DELETE], [DELETE], "cleanup_policy", _policies),
    _k("compression.type", "string", lambda s: "producer", "producer", None,
       one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")),
    _k("delete.retention.ms", "long", lambda s: 86_400_000, 86_400_000, "delete_retention_ms", at_least(0)),
    _k("file.delete.delay.ms", "long", lambda s: 60_000, 60_000, None, at_least(0)),
    _k("flush.messages", "long", lambda s: s["log.flush.interval.messages"], LONG_MAX, "flush_interval_messages",
       at_least(1)),
    _k("flush.ms", "long", lambda s: s["log.flush.interval.ms"] if s["log.flush.interval.ms"] is not None
       else LONG_MAX, LONG_MAX, "flush_interval_ms", at_least(0)),
    _k("index.interval.bytes", "int", lambda s: s["log.index.interval.bytes"], 4096, "index_interval_bytes",
       at_least(0)),
    _k("max.message.bytes", "int", lambda s: s["message.max.bytes"], 1_048_588, "max_message_bytes", at_least(0)),
    _k("message.timestamp.type", "string", lambda s: "CreateTime", "CreateTime", "timestamp_type",
       one_of("CreateTime", "LogAppendTime")),
    _k("min.cleanable.dirty.ratio", "double", lambda s: 0.5, 0.5, "min_cleanable_dirty_ratio", _ratio),
    _k("min.insync.replicas", "int", lambda s: s["min.insync.replicas"], 1, None, at_least(1)),
    _k("retention.bytes", "long", lambda s: s["log.retention.bytes"], -1, "retention_bytes"),
    _k("retention.ms", "long", lambda s: ms_or_hours(s, "log.retention"), 168 * HOUR_MS, "retention_ms",
       at_least(-1)),
    _k("segment.bytes", "int", lambda s: s["log.segment.bytes"], 1_073_741_824, "segment_bytes", at_least(14)),
    _k("segment.index.bytes", "int", lambda s: s["log.index.size.max.bytes"], 10_485_760, "max_index_size",
       at_least(4)),
    _k("segment.ms", "long", lambda s: ms_or_hours(s, "log.roll"), 168 * HOUR_MS, "roll_ms", at_least(1)),
    _k("unclean.leader.election.enable", "bool", lambda s: s["unclean.leader.election.enable"], False),
)
BY_NAME = {t.key.name: t for t in TOPIC_KEYS}
# Kafka creates its internal topics compacted (GroupCoordinator.offsetsTopicConfigs,
# TransactionLog): only each key's latest record matters to the loaders.
INTERNAL_TOPIC_CONFIGS = {OFFSETS_TOPIC: (("cleanup.policy", COMPACT),),
                          TXN_STATE_TOPIC: (("cleanup.policy", COMPACT),)}
LIST_KEYS = frozenset(t.key.name for t in TOPIC_KEYS if t.key.type == "list")  # APPEND / SUBTRACT apply

Overrides = Mapping[str, str]


def parse(overrides: Overrides, topic: str = "") -> dict[str, object]:
    """Typed values of a topic's overrides (None where it inherits); a ConfigError names
    an unknown key or a bad value, in Kafka's words."""
    return resolve([t.key for t in TOPIC_KEYS], dict(overrides), f"topic{' ' + topic if topic else ''}")


def refusal(overrides: Overrides) -> str | None:
    """Why these overrides cannot be set (Kafka answers INVALID_CONFIG with it), or None."""
    for name, text in overrides.items():
        if name not in BY_NAME:
            return f"Unknown topic config name: {name}"
        try:
            parse({name: text})
        except ConfigError as exc:  # "where: name=text: problem" -> Kafka's wording
            return f"Invalid value {text} for configuration {name}: {str(exc).rsplit(': ', 1)[-1]}"
    return None


def describe(settings: dict, overrides: Overrides) -> list[tuple[str, object, bool, object, str]]:
    """(name, value, overridden, Kafka's default, type) of every topic config: the
    override, or what the broker's settings give."""
    values = parse(overrides)
    return [(t.key.name, values[t.key.name] if values[t.key.name] is not None else t.inherited(settings),
             values[t.key.name] is not None, t.default, t.key.type) for t in TOPIC_KEYS]


def log_config(base: LogConfig, overrides: Overrides) -> LogConfig:
    """The broker's log settings with the topic's overrides applied."""
    values = parse(overrides)
    changes = {t.log_field: values[t.key.name] for t in TOPIC_KEYS
               if t.log_field is not None and values[t.key.name] is not None}
    if "cleanup_policy" in changes:
        changes["cleanup_policy"] = tuple(changes["cleanup_policy"])
    return replace(base, **changes) if changes else base


def value(overrides: Overrides, name: str, inherited):
    """One override's typed value, or `inherited` where the topic has none."""
    v = parse({name: overrides[name]})[name] if name in overrides else None
    return inherited if v is None else v


def incremental(current: Overrides, ops: list[tuple[str, int, str | None]]) -> dict[str, str]:
    """IncrementalAlterConfigs' operations (KIP-339): SET 0, DELETE 1, APPEND 2, SUBTRACT 3
    (the last two on list configs only) applied to a topic's overrides; raises ConfigError."""
    out = dict(current)
    for name, op, text in ops:
        if name not in BY_NAME:
            raise ConfigError(f"Unknown topic config name: {name}")
        if op == 0:
            out[name] = text or ""
        elif op == 1:
            out.pop(name, None)
        elif op in (2, 3):
            if name not in LIST_KEYS:
                raise ConfigError(f"Config value append/subtract is not allowed for config key {name}")
            have = out.get(name, ",".join(BY_NAME[name].default))
            items = [p for p in have.split(",") if p]
            given = [p.strip() for p in (text or "").split(",") if p.strip()]
            items = items + [p for p in given if p not in items] if op == 2 else [p for p in items if p not in given]
            out[name] = ",".join(items)
        else:
            raise ConfigError(f"unknown operation {op} for {name}")
    return out
