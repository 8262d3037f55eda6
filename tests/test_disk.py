"""The disk that can lie: what each fault keeps, on SimDisk; the same interface on RealDisk."""

import random

import pytest
from kafkaproof.impl.storage.disk import DiskError, RealDisk, SimDisk, read_whole, write_atomically


@pytest.fixture(params=["sim", "real"])
def disk(request, tmp_path):
    return SimDisk() if request.param == "sim" else RealDisk(str(tmp_path))


def test_interface_basics(disk):
    disk.mkdirs("a/b")
    disk.create("a/b/f")
    assert disk.append("a/b/f", b"hello") == 0
    assert disk.append("a/b/f", b" world") == 5
    assert disk.size("a/b/f") == 11 and disk.read("a/b/f", 6, 100) == b"world"
    disk.truncate("a/b/f", 5)
    assert read_whole(disk, "a/b/f") == b"hello"
    disk.rename("a/b/f", "a/b/g")
    assert disk.listdir("a/b") == ["g"] and disk.listdir("a") == ["b"]
    write_atomically(disk, "a/b/cp", b"0\n0\n")
    assert read_whole(disk, "a/b/cp") == b"0\n0\n" and not disk.exists("a/b/cp.tmp")
    disk.delete("a/b/g")
    assert not disk.exists("a/b/g")
    with pytest.raises(DiskError, match="no such file"):
        disk.read("a/b/g", 0, 1)
    with pytest.raises(DiskError, match="no such directory"):
        disk.listdir("nope")


def _written(d: SimDisk) -> None:
    d.create("f")
    d.append("f", b"durable|")
    d.fsync("f")
    d.append("f", b"first-unsynced|")
    d.append("f", b"second-unsynced")


def test_process_crash_keeps_the_page_cache():
    d = SimDisk()
    _written(d)
    # a process crash is simply: the process forgets its objects; the disk object stays
    assert read_whole(d, "f") == b"durable|first-unsynced|second-unsynced"


def test_power_loss_without_tear_keeps_exactly_the_fsynced_bytes():
    d = SimDisk()
    _written(d)
    assert d.unsynced_bytes() > 0
    assert d.power_loss(random.Random(0), tear=False) == ["f"]
    assert read_whole(d, "f") == b"durable|" and d.unsynced_bytes() == 0


def test_power_loss_tears_only_the_first_unsynced_write_to_a_strict_prefix():
    seen = set()
    for seed in range(200):
        d = SimDisk()
        _written(d)
        d.power_loss(random.Random(seed))
        content = read_whole(d, "f")
        assert content.startswith(b"durable|")
        tail = content[len(b"durable|"):]
        assert b"first-unsynced|".startswith(tail) and tail != b"first-unsynced|"
        seen.add(len(tail))
    assert len(seen) > 5  # tears land at many byte boundaries, and sometimes nowhere
    assert 0 in seen


def test_power_loss_undoes_an_unsynced_truncation():
    d = SimDisk()
    d.create("f")
    d.append("f", b"0123456789")
    d.fsync("f")
    d.truncate("f", 3)
    d.power_loss(random.Random(1))
    assert read_whole(d, "f") == b"0123456789"


def test_power_loss_is_deterministic_per_seed():
    def run(seed):
        d = SimDisk()
        for name in "abc":
            d.create(name)
            d.append(name, name.encode() * 50)
        d.power_loss(random.Random(seed))
        return [read_whole(d, n) for n in "abc"]

    assert run(3) == run(3)


def test_corruption_flips_bits_in_range_even_on_the_platter():
    d = SimDisk()
    d.create("f")
    d.append("f", bytes(100))
    d.fsync("f")
    d.corrupt("f", 40, 50, random.Random(2), flips=3)
    data = read_whole(d, "f")
    assert data[:40] == bytes(40) and data[50:] == bytes(50) and data[40:50] != bytes(10)
    d.power_loss(random.Random(0))
    assert read_whole(d, "f") == data  # the flipped bits were durable
    with pytest.raises(DiskError, match="nothing to corrupt"):
        d.corrupt("f", 100, 120, random.Random(0))


def test_real_disk_survives_many_open_files(tmp_path):
    d = RealDisk(str(tmp_path))
    for i in range(RealDisk.MAX_OPEN_FILES + 10):
        d.create(f"f{i}")
        d.append(f"f{i}", b"x")
    assert all(d.size(f"f{i}") == 1 for i in range(RealDisk.MAX_OPEN_FILES + 10))
    d.close()
