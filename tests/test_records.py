"""RecordBatch v2: round trips, interoperability with kafka-python, and bad bytes."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafkaproof.impl.protocol import errors
from kafkaproof.impl.protocol.errors import CorruptRecordError, ErrorCode
from kafkaproof.impl.protocol.records import (
    HEADER_SIZE,
    Compression,
    ControlRecordType,
    SimpleRecord,
    check_batch,
    control_batch,
    decode_batch,
    encode_batch,
    iter_batches,
    parse_control_record,
    set_base_offset,
    set_partition_leader_epoch,
)

maybe_bytes = st.none() | st.binary(max_size=40)
header_st = st.tuples(st.text(max_size=8), maybe_bytes)
record_st = st.builds(
    SimpleRecord,
    value=maybe_bytes,
    key=maybe_bytes,
    timestamp=st.integers(0, 2**41),
    headers=st.lists(header_st, max_size=3).map(tuple),
)
batch_args = st.fixed_dictionaries({
    "base_offset": st.integers(0, 2**40),
    "partition_leader_epoch": st.integers(-1, 2**31 - 1),
    "producer_id": st.integers(-1, 2**50),
    "producer_epoch": st.integers(-1, 2**15 - 1),
    "base_sequence": st.integers(-1, 2**31 - 1000),
    "is_transactional": st.booleans(),
    "compression": st.sampled_from([Compression.NONE, Compression.GZIP]),
})


@given(st.lists(record_st, min_size=1, max_size=6), batch_args)
def test_round_trip(records, args):
    raw = encode_batch(records, **args)
    batch = decode_batch(raw)
    h = batch.header
    assert h.base_offset == args["base_offset"]
    assert h.partition_leader_epoch == args["partition_leader_epoch"]
    assert (h.producer_id, h.producer_epoch, h.base_sequence) == (
        args["producer_id"], args["producer_epoch"], args["base_sequence"])
    assert h.is_transactional == args["is_transactional"] and not h.is_control
    assert h.compression == args["compression"]
    assert h.record_count == len(records) and h.last_offset == h.base_offset + len(records) - 1
    assert h.max_timestamp == max(r.timestamp for r in records)
    assert [(r.offset, r.key, r.value, r.timestamp, r.headers) for r in batch.records] == [
        (h.base_offset + i, r.key, r.value, r.timestamp, r.headers) for i, r in enumerate(records)
    ]


@given(st.lists(record_st, min_size=1, max_size=6), batch_args)
def test_kafka_python_reads_our_batches(records, args):
    raw = encode_batch(records, **args)
    theirs = DefaultRecordBatch(raw)
    assert theirs.validate_crc()
    assert theirs.base_offset == args["base_offset"]
    assert theirs.producer_id == args["producer_id"]
    assert theirs.producer_epoch == args["producer_epoch"]
    assert theirs.base_sequence == args["base_sequence"]
    assert theirs.is_transactional == args["is_transactional"]
    assert theirs.compression_type == args["compression"]
    got = [(r.offset, r.timestamp, r.key, r.value, [tuple(h) for h in r.headers]) for r in theirs]
    assert got == [
        (args["base_offset"] + i, r.timestamp, r.key, r.value, list(r.headers))
        for i, r in enumerate(records)
    ]


@given(st.lists(record_st, min_size=1, max_size=6), batch_args)
def test_we_read_kafka_python_batches(records, args):
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=int(args["compression"]), is_transactional=False,
        producer_id=-1, producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    if args["producer_id"] >= 0 and args["producer_epoch"] >= 0 and args["base_sequence"] >= 0:
        builder.set_producer_state(args["producer_id"], args["producer_epoch"],
                                   args["base_sequence"], args["is_transactional"])
    for i, r in enumerate(records):
        builder.append(i, r.timestamp, r.key, r.value, [(k, v) for k, v in r.headers])
    raw = bytearray(builder.build())
    theirs = DefaultRecordBatch(bytes(raw))
    ours = decode_batch(raw)
    h = ours.header
    assert (h.base_offset, h.producer_id, h.producer_epoch, h.base_sequence, h.is_transactional) == (
        theirs.base_offset, theirs.producer_id, theirs.producer_epoch, theirs.base_sequence,
        theirs.is_transactional)
    assert (h.compression, h.first_timestamp, h.max_timestamp, h.crc) == (
        theirs.compression_type, theirs.first_timestamp, theirs.max_timestamp, theirs.crc)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in ours.records] == [
        (r.offset, r.timestamp, r.key, r.value, tuple(tuple(x) for x in r.headers)) for r in theirs
    ]


def test_offsets_and_epoch_are_outside_the_crc():
    raw = bytearray(encode_batch([SimpleRecord(b"v")]))
    set_base_offset(raw, 0, 2048)
    set_partition_leader_epoch(raw, 0, 7)
    h = check_batch(raw)  # still valid: no CRC recomputation needed
    assert (h.base_offset, h.partition_leader_epoch) == (2048, 7)


def test_control_batch_round_trip_and_kafka_python_sees_a_marker():
    raw = control_batch(ControlRecordType.COMMIT, producer_id=9, producer_epoch=3,
                        coordinator_epoch=5, timestamp=100)
    batch = decode_batch(raw)
    assert batch.header.is_control and batch.header.is_transactional
    assert parse_control_record(batch.records[0]) == (ControlRecordType.COMMIT, 5)
    theirs = DefaultRecordBatch(raw)
    assert theirs.is_control_batch
    assert [r.type for r in theirs] == [1]


def _batch() -> bytes:
    return encode_batch([SimpleRecord(b"hello", b"k", 5), SimpleRecord(b"world", None, 6)], base_offset=40)


def test_crc_mismatch_names_offset_and_reason():
    raw = bytearray(_batch())
    raw[-1] ^= 0x01
    with pytest.raises(CorruptRecordError, match=r"CRC mismatch.*base offset 40") as exc:
        decode_batch(raw)
    assert exc.value.code == ErrorCode.CORRUPT_MESSAGE and exc.value.position == 0


@pytest.mark.parametrize("keep", [0, 5, 11, 12, 30, HEADER_SIZE, HEADER_SIZE + 3])
def test_truncated_bytes_are_reported_not_misread(keep):
    raw = _batch()
    with pytest.raises(CorruptRecordError, match="truncated|below the minimum"):
        decode_batch(raw[:keep] if keep else b"\x00" * 5)


def test_unknown_magic():
    raw = bytearray(_batch())
    raw[16] = 1
    with pytest.raises(CorruptRecordError, match="unknown magic 1"):
        check_batch(raw)


def test_unknown_compression_codec():
    raw = bytearray(_batch())
    raw[22] |= 0x07
    with pytest.raises(CorruptRecordError, match="unknown compression codec 7"):
        check_batch(raw)


def test_batch_length_below_minimum():
    raw = bytearray(_batch())
    struct.pack_into(">i", raw, 8, 10)
    with pytest.raises(CorruptRecordError, match="below the minimum"):
        check_batch(raw)


def test_garbage_with_valid_crc_is_caught_by_the_record_decoder():
    raw = bytearray(_batch())
    struct.pack_into(">i", raw, 57, 5)  # claim 5 records; CRC now wrong...
    from crc32c import crc32c
    struct.pack_into(">I", raw, 17, crc32c(bytes(raw[21:])))  # ...so fix it up
    with pytest.raises(CorruptRecordError, match="varint runs past|does not fit"):
        decode_batch(raw)


def test_iter_batches_stops_at_the_first_bad_one_with_its_position():
    good = _batch()
    bad = bytearray(_batch())
    bad[-2] ^= 0xFF
    positions = []
    with pytest.raises(CorruptRecordError) as exc:
        for pos, _ in iter_batches(good + good + bytes(bad)):
            positions.append(pos)
    assert positions == [0, len(good)] and exc.value.position == 2 * len(good)


def test_error_codes_match_kafka_python():
    import kafka.errors as kerr

    theirs = {cls.errno: cls.__name__ for cls in vars(kerr).values()
              if isinstance(cls, type) and issubclass(cls, kerr.BrokerResponseError) and cls.errno is not None}
    for code in ErrorCode:
        assert code.value in theirs, code
    # spot-check names that the protocol logic depends on
    assert theirs[ErrorCode.NOT_LEADER_OR_FOLLOWER] == "NotLeaderForPartitionError"
    assert theirs[ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER] == "OutOfOrderSequenceNumberError"
    assert theirs[ErrorCode.FENCED_LEADER_EPOCH] == "FencedLeaderEpochError"
    assert theirs[ErrorCode.PRODUCER_FENCED] == "ProducerFencedError"
    assert errors.KafkaError(ErrorCode.NONE, "x").code == 0
