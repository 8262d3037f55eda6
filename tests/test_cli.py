"""The command line as a user meets it: dump-log on good, damaged and missing paths; demo."""

import subprocess
import sys

from kafkaproof.impl.protocol.records import (
    ControlRecordType,
    SimpleRecord,
    control_batch,
    encode_batch,
)
from kafkaproof.impl.storage import Log, LogConfig, RealDisk

from kafkaproof.cli import main


def _log_dir(tmp_path, n=20):
    log = Log.open(RealDisk(str(tmp_path)), "orders-0", LogConfig(segment_bytes=600))
    for i in range(n):
        log.append_as_leader(encode_batch([SimpleRecord(f"value-{i}".encode(), b"key", i)],
                                          producer_id=4, producer_epoch=0, base_sequence=i), 2)
    log.append_as_leader(control_batch(ControlRecordType.COMMIT, producer_id=4, producer_epoch=0,
                                       coordinator_epoch=1, timestamp=99), 2)
    log.close()
    return tmp_path / "orders-0", log


def test_dump_log_directory(tmp_path, capsys):
    path, log = _log_dir(tmp_path)
    assert main(["dump-log", str(path)]) == 0
    out = capsys.readouterr().out
    batch_lines = [line for line in out.splitlines() if line.startswith("baseOffset:")]
    assert len(batch_lines) == 21
    assert out.count("Dumping ") == len(log.segments)
    first = batch_lines[0]
    for field in ("baseOffset: 0", "lastOffset: 0", "count: 1", "producerId: 4", "producerEpoch: 0",
                  "baseSequence: 0", "isTransactional: false", "isControl: false", "position: 0",
                  "partitionLeaderEpoch: 2", "isvalid: true", "crc: "):
        assert field in first, field
    assert "isControl: true" in batch_lines[-1]


def test_dump_log_segment_with_records(tmp_path, capsys):
    path, log = _log_dir(tmp_path)
    last = path / log.segments[-1].log_path.split("/")[-1]
    assert main(["dump-log", str(last), "--records"]) == 0
    out = capsys.readouterr().out
    assert "| offset: 20" in out and "endTxnMarker: COMMIT coordinatorEpoch: 1" in out
    assert "key: key payload: value-19" in out


def test_dump_log_reports_damage_with_exit_1(tmp_path, capsys):
    path, log = _log_dir(tmp_path)
    seg = path / log.segments[0].log_path.split("/")[-1]
    data = bytearray(seg.read_bytes())
    data[78 + 75] ^= 0xFF  # a record byte of the second (78-byte) batch
    seg.write_bytes(bytes(data) + b"\x00\x00\x00")  # and a torn tail
    assert main(["dump-log", str(seg)]) == 1
    out = capsys.readouterr().out
    assert "isvalid: false error: CRC mismatch" in out
    assert "Found 3 invalid bytes at position" in out


def test_dump_log_missing_or_empty_path_exit_2(tmp_path, capsys):
    assert main(["dump-log", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["dump-log", str(tmp_path)]) == 2
    assert "no .log segment files" in capsys.readouterr().err


def test_dump_log_unreadable_file_exit_2(tmp_path, capsys):
    path, log = _log_dir(tmp_path)
    seg = path / log.segments[0].log_path.split("/")[-1]
    seg.unlink()
    seg.mkdir()  # a directory where a file should be: reading it fails
    assert main(["dump-log", str(seg)]) in (0, 2)  # a dir: dumps nothing inside, or errors
    target = path / "00000000000000000000.log"
    target.rmdir()
    target.symlink_to(tmp_path / "dangling")
    assert main(["dump-log", str(target)]) == 2


def test_usage_error_exit_2():
    result = subprocess.run([sys.executable, "-m", "kafkaproof.cli", "dump-log"], capture_output=True, text=True)
    assert result.returncode == 2 and "the following arguments are required: path" in result.stderr


def test_demo_runs_and_shows_losses():
    result = subprocess.run([sys.executable, "-m", "kafkaproof.cli", "demo"], capture_output=True, text=True,
                            env={"COLUMNS": "120", "PATH": ""})
    assert result.returncode == 0, result.stderr
    assert "power loss" in result.stdout and "dump-log" in result.stdout
    assert "truncated" in result.stdout  # the bit-flip recovery report
