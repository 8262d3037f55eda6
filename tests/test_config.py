"""Kafka .properties parsing and validation: every bad input names its key."""

import pytest
from kafkaproof.impl.config import ConfigError, load_properties, parse_properties
from kafkaproof.impl.storage.config import LogConfig

SAMPLE = """\
# server.properties
! another comment style
log.segment.bytes=2048
log.roll.ms : 60000
log.retention.bytes   4096
log.flush.interval.messages=\\
    10
"""


def test_java_properties_syntax():
    raw = parse_properties(SAMPLE, "server.properties")
    assert {k: v for k, (v, _) in raw.items()} == {
        "log.segment.bytes": "2048", "log.roll.ms": "60000",
        "log.retention.bytes": "4096", "log.flush.interval.messages": "10",
    }
    assert raw["log.roll.ms"][1] == "server.properties:4"


def test_log_config_from_properties_and_kafka_defaults():
    cfg = LogConfig.from_properties(parse_properties(SAMPLE))
    assert (cfg.segment_bytes, cfg.roll_ms, cfg.retention_bytes, cfg.flush_interval_messages) == (
        2048, 60000, 4096, 10)
    default = LogConfig.from_properties({})
    assert default == LogConfig()
    assert default.flush_interval_messages == 2**63 - 1  # Kafka never fsyncs by default
    assert default.roll_ms == default.retention_ms == 168 * 3600 * 1000
    assert default.segment_bytes == 1 << 30 and default.index_interval_bytes == 4096
    assert LogConfig.from_properties({"log.retention.hours": "1"}).retention_ms == 3_600_000


@pytest.mark.parametrize("raw, message", [
    ({"log.segmnet.bytes": "1"}, r"unknown broker configuration key 'log.segmnet.bytes' \(did you mean 'log.segment.bytes'\?\)"),
    ({"log.segment.bytes": "abc"}, r"log.segment.bytes: expected an integer, got 'abc'"),
    ({"log.segment.bytes": "3"}, r"log.segment.bytes=3: must be at least 14"),
    ({"log.segment.bytes": str(2**31)}, r"does not fit in a Java int"),
    ({"log.flush.interval.messages": "0"}, r"log.flush.interval.messages=0: must be at least 1"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        LogConfig.from_properties(raw)


def test_errors_say_which_file_and_line(tmp_path):
    path = tmp_path / "server.properties"
    path.write_text("log.segment.bytes=1024\nlog.roll.ms=soon\n")
    with pytest.raises(ConfigError, match=r"server.properties:2: log.roll.ms: expected an integer"):
        LogConfig.from_properties(load_properties(str(path)))


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_properties(str(tmp_path / "nope.properties"))
    bad = tmp_path / "bad.properties"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_properties(str(bad))
