"""The broker's log settings (Kafka's `log.*` keys, defaults as in Kafka 3.x)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kafkaproof.impl.config import LONG_MAX, Key, at_least, resolve

HOUR_MS = 3_600_000

LOG_KEYS = (
    Key("log.segment.bytes", "int", 1 << 30, "Roll a new segment past this size.", at_least(14)),
    Key("log.roll.ms", "long", None, "Roll a segment this old (overrides log.roll.hours).", at_least(1)),
    Key("log.roll.hours", "int", 168, "Roll a segment this old, in hours.", at_least(1)),
    Key("log.retention.bytes", "long", -1, "Delete old segments past this size; -1: no limit."),
    Key("log.retention.ms", "long", None, "Delete segments older than this (overrides .hours)."),
    Key("log.retention.hours", "int", 168, "Delete segments older than this, in hours."),
    # Kafka never fsyncs by default: durability comes from replication. So do we.
    Key("log.flush.interval.messages", "long", LONG_MAX, "fsync after this many messages.", at_least(1)),
    Key("log.flush.interval.ms", "long", None, "fsync data older than this; unset: never.", at_least(0)),
    Key("log.index.interval.bytes", "int", 4096, "Bytes between offset index entries.", at_least(0)),
    Key("log.index.size.max.bytes", "int", 10 * 1024 * 1024, "Largest index file.", at_least(4)),
    Key("message.max.bytes", "int", 1048588, "Largest record batch the broker accepts.", at_least(0)),
)


@dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = 1 << 30
    roll_ms: int = 168 * HOUR_MS
    retention_bytes: int = -1
    retention_ms: int = 168 * HOUR_MS
    flush_interval_messages: int = LONG_MAX
    flush_interval_ms: int | None = None
    index_interval_bytes: int = 4096
    max_index_size: int = 10 * 1024 * 1024
    max_message_bytes: int = 1048588
    # Topic-level only (impl/broker/topic_config.py): no broker key sets them here.
    cleanup_policy: tuple[str, ...] = ("delete",)
    delete_retention_ms: int = 86_400_000
    min_cleanable_dirty_ratio: float = 0.5
    timestamp_type: str = "CreateTime"

    @classmethod
    def from_properties(cls, raw: Mapping[str, str | tuple[str, str]]) -> LogConfig:
        v = resolve(LOG_KEYS, raw, "broker")
        return cls(
            segment_bytes=v["log.segment.bytes"],
            roll_ms=ms_or_hours(v, "log.roll"),
            retention_bytes=v["log.retention.bytes"],
            retention_ms=ms_or_hours(v, "log.retention"),
            flush_interval_messages=v["log.flush.interval.messages"],
            flush_interval_ms=v["log.flush.interval.ms"],
            index_interval_bytes=v["log.index.interval.bytes"],
            max_index_size=v["log.index.size.max.bytes"],
            max_message_bytes=v["message.max.bytes"],
        )


def ms_or_hours(values: Mapping[str, object], prefix: str) -> int:
    """Kafka's pairs like log.retention.ms / log.retention.hours: the .ms key when set."""
    ms = values[f"{prefix}.ms"]
    return ms if ms is not None else values[f"{prefix}.hours"] * HOUR_MS
