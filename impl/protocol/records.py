"""Kafka RecordBatch v2 (magic 2): the on-disk and on-wire record format.

Layout (Kafka's DefaultRecordBatch.java; KIP-98 added the producer fields):

    offset  size  field
    0       8     baseOffset
    8       4     batchLength            bytes after this field
    12      4     partitionLeaderEpoch   not covered by the CRC: the leader stamps it
    16      1     magic                  = 2
    17      4     crc                    CRC32C of bytes [21, end)
    21      2     attributes             compression(0-2) timestampType(3)
                                         transactional(4) control(5) deleteHorizon(6)
    23      4     lastOffsetDelta
    27      8     baseTimestamp
    35      8     maxTimestamp
    43      8     producerId
    51      2     producerEpoch
    53      4     baseSequence
    57      4     recordCount
    61      ...   records (compressed as one block when compression != 0)

baseOffset and partitionLeaderEpoch sit outside the CRC so a broker can assign
offsets and stamp its epoch without recomputing it (`set_base_offset`).
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from crc32c import crc32c
from kafkaproof.impl.protocol.errors import CorruptRecordError

MAGIC = 2
HEADER = struct.Struct(">qiibIhiqqqhii")
HEADER_SIZE = HEADER.size  # 61
LOG_OVERHEAD = 12  # baseOffset + batchLength: what batchLength does not count
_LENGTH = struct.Struct(">i")  # batchLength, after the 8-byte base offset
CRC_START = 21
MIN_BATCH_LENGTH = HEADER_SIZE - LOG_OVERHEAD

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
NO_SEQUENCE = -1
NO_PARTITION_LEADER_EPOCH = -1
NO_TIMESTAMP = -1

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_MASK = 0x08
_TRANSACTIONAL_MASK = 0x10
_CONTROL_MASK = 0x20


class Compression(IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


_MAX_CODEC = max(Compression)


class TimestampType(IntEnum):
    CREATE_TIME = 0
    LOG_APPEND_TIME = 1


class ControlRecordType(IntEnum):
    """Transaction markers (Kafka's ControlRecordType)."""

    ABORT = 0
    COMMIT = 1


@dataclass(frozen=True, slots=True)
class SimpleRecord:
    """What a producer sends: offsets are assigned when the batch is built."""

    value: bytes | None
    key: bytes | None = None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes | None], ...] = ()


class Record(NamedTuple):
    """A decoded record with its absolute offset and timestamp."""

    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()


class BatchHeader(NamedTuple):
    """The fixed 61-byte batch header, readable without touching the records.
    (A NamedTuple: headers are parsed for every read and append, and tuples are cheap.)"""

    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    first_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    record_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.last_offset + 1

    @property
    def compression(self) -> Compression:
        return Compression(self.attributes & _COMPRESSION_MASK)

    @property
    def timestamp_type(self) -> TimestampType:
        return TimestampType((self.attributes & _TIMESTAMP_TYPE_MASK) >> 3)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_MASK)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_MASK)

    @property
    def last_sequence(self) -> int:
        if self.base_sequence == NO_SEQUENCE:
            return NO_SEQUENCE
        # Sequences wrap at Int32.MAX (Kafka's DefaultRecordBatch.incrementSequence).
        return (self.base_sequence + self.last_offset_delta) % (1 << 31)


@dataclass(frozen=True, slots=True)
class RecordBatch:
    header: BatchHeader
    records: list[Record] = field(default_factory=list)


# --- varints (zigzag, as Kafka's ByteUtils.writeVarint / writeVarlong) -----------------


def _write_varint(out: bytearray, value: int) -> None:
    v = (value << 1) ^ (value >> 63)  # zigzag; Python ints are unbounded, so mask below
    v &= 0xFFFFFFFFFFFFFFFF
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _read_varint(buf: bytes | memoryview, pos: int, end: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise CorruptRecordError("varint runs past the end of the record")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift > 63:
            raise CorruptRecordError("varint longer than 10 bytes")


def _write_bytes(out: bytearray, data: bytes | None) -> None:
    if data is None:
        _write_varint(out, -1)
    else:
        _write_varint(out, len(data))
        out += data


def _read_bytes(buf: bytes | memoryview, pos: int, end: int) -> tuple[bytes | None, int]:
    n, pos = _read_varint(buf, pos, end)
    if n < 0:
        return None, pos
    if pos + n > end:
        raise CorruptRecordError(f"field of {n} bytes runs past the end of the record")
    return bytes(buf[pos : pos + n]), pos + n


# --- encoding -----------------------------------------------------------------------------


def _encode_record(out: bytearray, rec: SimpleRecord, offset_delta: int, base_ts: int) -> None:
    body = bytearray(b"\x00")  # record attributes: unused, always 0
    _write_varint(body, rec.timestamp - base_ts)
    _write_varint(body, offset_delta)
    _write_bytes(body, rec.key)
    _write_bytes(body, rec.value)
    _write_varint(body, len(rec.headers))
    for hkey, hvalue in rec.headers:
        _write_bytes(body, hkey.encode("utf-8"))
        _write_bytes(body, hvalue)
    _write_varint(out, len(body))
    out += body


def encode_batch(
    records: Sequence[SimpleRecord],
    *,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
    producer_id: int = NO_PRODUCER_ID,
    producer_epoch: int = NO_PRODUCER_EPOCH,
    base_sequence: int = NO_SEQUENCE,
    is_transactional: bool = False,
    is_control: bool = False,
    compression: Compression = Compression.NONE,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
) -> bytes:
    """Build one batch; record i gets offset delta i."""
    if not records:
        raise ValueError("a record batch needs at least one record")
    if compression not in (Compression.NONE, Compression.GZIP):
        raise ValueError(f"compression {compression.name} is not supported (none, gzip)")
    attributes = (
        (int(timestamp_type) << 3)
        | (_TRANSACTIONAL_MASK if is_transactional else 0)
        | (_CONTROL_MASK if is_control else 0)
    )
    header = BatchHeader(base_offset, 0, partition_leader_epoch, MAGIC, 0, attributes, len(records) - 1,
                         records[0].timestamp, max(r.timestamp for r in records), producer_id, producer_epoch,
                         base_sequence, len(records))
    return _assemble(header, list(enumerate(records)), compression)


def _assemble(h: BatchHeader, records: Sequence[tuple[int, SimpleRecord]], compression: Compression) -> bytes:
    """A batch: the header's offsets, producer fields, timestamps and attributes (its
    compression bits set from `compression`), then the (offset delta, record) pairs;
    length, record count and CRC computed."""
    body = bytearray()
    for delta, rec in records:
        _encode_record(body, rec, delta, h.first_timestamp)
    if compression == Compression.GZIP and records:
        body = bytearray(gzip.compress(bytes(body), mtime=0))  # mtime=0: same bytes every run
    out = bytearray(HEADER_SIZE) + body
    HEADER.pack_into(
        out, 0, h.base_offset, len(out) - LOG_OVERHEAD, h.partition_leader_epoch, MAGIC, 0,
        (h.attributes & ~_COMPRESSION_MASK) | int(compression), h.last_offset_delta, h.first_timestamp,
        h.max_timestamp, h.producer_id, h.producer_epoch, h.base_sequence, len(records),
    )
    _write_crc(out, 0)
    return bytes(out)


def _write_crc(buf: bytearray, pos: int) -> None:
    """The CRC32C of the batch at `pos`, over its bytes from the attributes on."""
    length, = struct.unpack_from(">i", buf, pos + 8)
    struct.pack_into(">I", buf, pos + 17, crc32c(memoryview(buf)[pos + CRC_START : pos + LOG_OVERHEAD + length]))


def control_batch(
    kind: ControlRecordType,
    *,
    producer_id: int,
    producer_epoch: int,
    coordinator_epoch: int,
    timestamp: int,
    base_offset: int = 0,
    partition_leader_epoch: int = NO_PARTITION_LEADER_EPOCH,
) -> bytes:
    """A transaction marker: one control record, key (version, type), value (version, epoch)."""
    rec = SimpleRecord(
        key=struct.pack(">hh", 0, int(kind)),
        value=struct.pack(">hi", 0, coordinator_epoch),
        timestamp=timestamp,
    )
    return encode_batch(
        [rec], base_offset=base_offset, partition_leader_epoch=partition_leader_epoch,
        producer_id=producer_id, producer_epoch=producer_epoch, is_transactional=True,
        is_control=True,
    )


def parse_control_record(record: Record) -> tuple[ControlRecordType, int]:
    """(marker type, coordinator epoch) of a control record."""
    if record.key is None or len(record.key) < 4 or record.value is None or len(record.value) < 6:
        raise CorruptRecordError(f"control record at offset {record.offset} is too short")
    _version, kind = struct.unpack_from(">hh", record.key)
    _version, coordinator_epoch = struct.unpack_from(">hi", record.value)
    try:
        return ControlRecordType(kind), coordinator_epoch
    except ValueError:
        raise CorruptRecordError(f"unknown control record type {kind}") from None


def set_base_offset(buf: bytearray, pos: int, base_offset: int) -> None:
    """Assign offsets in place; the CRC does not cover them."""
    struct.pack_into(">q", buf, pos, base_offset)


def set_partition_leader_epoch(buf: bytearray, pos: int, epoch: int) -> None:
    struct.pack_into(">i", buf, pos + 12, epoch)


def rebuild_batch(h: BatchHeader, records: Sequence[Record]) -> bytes:
    """A batch with some of its records removed (the log cleaner), possibly all: the same
    base offset, last offset delta, producer fields and timestamps, so offsets never move
    and the producer's sequence state survives (Kafka's MemoryRecords.filterTo). Written
    uncompressed unless it was gzip."""
    compression = h.compression if h.compression == Compression.GZIP else Compression.NONE
    return _assemble(h, [(r.offset - h.base_offset, SimpleRecord(r.value, r.key, r.timestamp, r.headers))
                         for r in records], compression)


def set_log_append_time(buf: bytearray, pos: int, now_ms: int) -> None:
    """message.timestamp.type=LogAppendTime: the broker's clock becomes the batch's
    timestamp (Kafka's DefaultRecordBatch.setMaxTimestamp); the CRC covers it, so it is
    computed again."""
    attributes, = struct.unpack_from(">h", buf, pos + 21)
    struct.pack_into(">h", buf, pos + 21, attributes | _TIMESTAMP_TYPE_MASK)
    struct.pack_into(">q", buf, pos + 35, now_ms)
    _write_crc(buf, pos)


# --- decoding -----------------------------------------------------------------------------


def parse_header(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Read the fixed header at `pos`; checks sizes and magic, not the CRC."""
    available = len(buf) - pos
    if available < LOG_OVERHEAD:
        raise CorruptRecordError(
            f"truncated batch: {available} bytes left, a batch header needs {HEADER_SIZE}", pos
        )
    base_offset, batch_length = struct.unpack_from(">qi", buf, pos)
    if batch_length < MIN_BATCH_LENGTH:
        raise CorruptRecordError(
            f"batch length {batch_length} is below the minimum {MIN_BATCH_LENGTH}"
            f" (base offset {base_offset})", pos,
        )
    if available < HEADER_SIZE:
        raise CorruptRecordError(
            f"truncated batch: {available} bytes left, a batch header needs {HEADER_SIZE}", pos
        )
    header = BatchHeader(*HEADER.unpack_from(buf, pos))
    if header.magic != MAGIC:
        raise CorruptRecordError(
            f"unknown magic {header.magic} (only RecordBatch v2, magic 2, is supported)"
            f" (base offset {base_offset})", pos,
        )
    if header.attributes & _COMPRESSION_MASK > _MAX_CODEC:
        raise CorruptRecordError(
            f"unknown compression codec {header.attributes & _COMPRESSION_MASK}"
            f" (base offset {base_offset})", pos,
        )
    if header.last_offset_delta < 0 or header.record_count < 0:
        raise CorruptRecordError(
            f"negative lastOffsetDelta {header.last_offset_delta} or record count"
            f" {header.record_count} (base offset {base_offset})", pos,
        )
    return header


def check_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> BatchHeader:
    """Header checks plus: the whole batch is present and its CRC32C matches."""
    header = parse_header(buf, pos)
    end = pos + header.size
    if end > len(buf):
        raise CorruptRecordError(
            f"truncated batch: header says {header.size} bytes, only {len(buf) - pos} present"
            f" (base offset {header.base_offset})", pos,
        )
    computed = crc32c(memoryview(buf)[pos + CRC_START : end])
    if computed != header.crc:
        raise CorruptRecordError(
            f"CRC mismatch: stored 0x{header.crc:08x}, computed 0x{computed:08x}"
            f" (base offset {header.base_offset})", pos,
        )
    return header


def iter_batches(buf: bytes | bytearray | memoryview, pos: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) for each valid batch; raises at the first invalid one."""
    while pos < len(buf):
        header = check_batch(buf, pos)
        yield pos, header
        pos += header.size


# Decoded batches by their bytes. Followers copy their leader's batches byte for byte, so
# every replica, consumer and final read decodes the same bytes: decoding is pure, and a
# second decode of them is a lookup. Records are immutable; each caller gets its own list.
# Bounded by bytes, not batches: `serve` decodes batches of up to a megabyte.
_DECODED: dict[bytes, tuple[BatchHeader, tuple[Record, ...]]] = {}
_DECODED_MAX_BYTES = 32 << 20
_decoded_bytes = 0


def decode_batch(buf: bytes | bytearray | memoryview, pos: int = 0) -> RecordBatch:
    """Fully decode and validate one batch starting at `pos`."""
    global _decoded_bytes
    if len(buf) - pos >= LOG_OVERHEAD:
        size = LOG_OVERHEAD + _LENGTH.unpack_from(buf, pos + 8)[0]
        key = buf if pos == 0 and size == len(buf) and isinstance(buf, bytes) else bytes(buf[pos : pos + size])
        known = _DECODED.get(key)
        if known is not None:
            return RecordBatch(known[0], list(known[1]))
        batch = _decode_batch(buf, pos)
        if _decoded_bytes + len(key) > _DECODED_MAX_BYTES:
            _DECODED.clear()
            _decoded_bytes = 0
        _DECODED[key] = (batch.header, tuple(batch.records))
        _decoded_bytes += len(key)
        return batch
    return _decode_batch(buf, pos)


def _decode_batch(buf: bytes | bytearray | memoryview, pos: int) -> RecordBatch:
    header = check_batch(buf, pos)
    end = pos + header.size
    body: bytes | memoryview = memoryview(buf)[pos + HEADER_SIZE : end]
    if header.compression == Compression.GZIP:
        try:
            body = gzip.decompress(bytes(body))
        except (OSError, EOFError) as exc:
            raise CorruptRecordError(f"gzip records do not decompress: {exc}", pos) from None
    elif header.compression != Compression.NONE:
        raise CorruptRecordError(f"compression {header.compression.name} is not supported", pos)
    try:
        records = _decode_records(body, header)
    except CorruptRecordError as exc:
        raise CorruptRecordError(f"{exc.reason} (base offset {header.base_offset})", pos) from None
    return RecordBatch(header, records)


def _decode_records(body: bytes | memoryview, h: BatchHeader) -> list[Record]:
    records: list[Record] = []
    p, end = 0, len(body)
    log_time = h.attributes & _TIMESTAMP_TYPE_MASK  # LogAppendTime: every record has the broker's time
    for _ in range(h.record_count):
        length, p = _read_varint(body, p, end)
        rec_end = p + length
        if length < 1 or rec_end > end:
            raise CorruptRecordError(f"record length {length} does not fit in the batch")
        p += 1  # attributes, unused
        ts_delta, p = _read_varint(body, p, rec_end)
        offset_delta, p = _read_varint(body, p, rec_end)
        if not 0 <= offset_delta <= h.last_offset_delta:
            raise CorruptRecordError(
                f"offset delta {offset_delta} outside [0, {h.last_offset_delta}]"
            )
        key, p = _read_bytes(body, p, rec_end)
        value, p = _read_bytes(body, p, rec_end)
        n_headers, p = _read_varint(body, p, rec_end)
        if n_headers < 0:
            raise CorruptRecordError(f"negative header count {n_headers}")
        headers = []
        for _ in range(n_headers):
            hkey, p = _read_bytes(body, p, rec_end)
            if hkey is None:
                raise CorruptRecordError("null header key")
            hvalue, p = _read_bytes(body, p, rec_end)
            headers.append((hkey.decode("utf-8", errors="replace"), hvalue))
        if p != rec_end:
            raise CorruptRecordError(f"record declares {length} bytes but uses {length - rec_end + p}")
        records.append(
            Record(h.base_offset + offset_delta, h.max_timestamp if log_time else h.first_timestamp + ts_delta,
                   key, value, tuple(headers))
        )
    if p != end:
        raise CorruptRecordError(f"{end - p} bytes after the last of {h.record_count} records")
    return records
