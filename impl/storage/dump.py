"""`kafkaproof dump-log`: one line per batch, in the words of Kafka's `kafka-dump-log.sh`.

Reads segment files directly and never writes: it must be safe to point at a live
or damaged log directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from kafkaproof.impl.protocol.errors import CorruptRecordError
from kafkaproof.impl.protocol.records import (
    HEADER_SIZE,
    Compression,
    TimestampType,
    check_batch,
    decode_batch,
    parse_control_record,
    parse_header,
)


def segment_files(path: str) -> list[str]:
    """The `.log` files to dump: `path` itself, or every segment in a partition directory."""
    if os.path.isdir(path):
        return [os.path.join(path, n) for n in sorted(os.listdir(path)) if n.endswith(".log")]
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")
    return [path]


def dump_segment(path: str, records: bool = False) -> Iterator[tuple[str, bool]]:
    """(line, ok) pairs; `ok` is False for a line that reports damage."""
    yield f"Dumping {path}", True
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        stem = os.path.basename(path).split(".", 1)[0]
        if stem.isdigit():
            yield f"Log starting offset: {int(stem)}", True
        pos = 0
        while pos < size:
            f.seek(pos)
            head = f.read(HEADER_SIZE)
            try:
                header = parse_header(head)
                f.seek(pos)
                raw = f.read(header.size)
                valid, reason = True, ""
                try:
                    check_batch(raw)
                except CorruptRecordError as exc:
                    if "truncated" in exc.reason:
                        raise
                    valid, reason = False, exc.reason
            except CorruptRecordError as exc:
                yield f"Found {size - pos} invalid bytes at position {pos} of {path}: {exc.reason}", False
                return
            h = header
            ts_type = "LogAppendTime" if h.timestamp_type == TimestampType.LOG_APPEND_TIME else "CreateTime"
            yield (
                f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.record_count}"
                f" baseSequence: {h.base_sequence} lastSequence: {h.last_sequence}"
                f" producerId: {h.producer_id} producerEpoch: {h.producer_epoch}"
                f" partitionLeaderEpoch: {h.partition_leader_epoch}"
                f" isTransactional: {str(h.is_transactional).lower()} isControl: {str(h.is_control).lower()}"
                f" position: {pos} {ts_type}: {h.max_timestamp} size: {h.size} magic: {h.magic}"
                f" compresscodec: {Compression(h.compression).name.lower()} crc: {h.crc}"
                f" isvalid: {str(valid).lower()}" + (f" error: {reason}" if reason else "")
            ), valid
            if records and valid:
                yield from _record_lines(raw, h)
            pos += header.size


def _record_lines(raw: bytes, h) -> Iterator[tuple[str, bool]]:
    try:
        batch = decode_batch(raw)
    except CorruptRecordError as exc:
        yield f"| records do not decode: {exc.reason}", False
        return
    for i, r in enumerate(batch.records):
        seq = h.base_sequence + i if h.base_sequence >= 0 else -1
        line = (
            f"| offset: {r.offset} CreateTime: {r.timestamp}"
            f" keySize: {-1 if r.key is None else len(r.key)}"
            f" valueSize: {-1 if r.value is None else len(r.value)} sequence: {seq}"
            f" headerKeys: [{','.join(k for k, _ in r.headers)}]"
        )
        if h.is_control:
            kind, coordinator_epoch = parse_control_record(r)
            line += f" endTxnMarker: {kind.name} coordinatorEpoch: {coordinator_epoch}"
        else:
            line += f" key: {_show(r.key)} payload: {_show(r.value)}"
        yield line, True


def _show(data: bytes | None) -> str:
    if data is None:
        return "null"
    return data.decode("utf-8", errors="backslashreplace")
