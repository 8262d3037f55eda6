"""Kafka's text checkpoint files: `version`, `count`, then one entry per line.

Used for `leader-epoch-checkpoint` (`epoch startOffset`),
`replication-offset-checkpoint` and `recovery-point-offset-checkpoint`
(`topic partition offset`). Replaced atomically, as Kafka's CheckpointFile does.
"""

from __future__ import annotations

from kafkaproof.impl.storage.disk import Disk, DiskError, read_whole, write_atomically

VERSION = 0


class CheckpointError(ValueError):
    """A checkpoint file that does not parse; names the file and line."""


def write_checkpoint(disk: Disk, path: str, entries: list[tuple[object, ...]]) -> None:
    lines = [str(VERSION), str(len(entries))] + [" ".join(str(f) for f in e) for e in entries]
    write_atomically(disk, path, ("\n".join(lines) + "\n").encode("ascii"))


def read_checkpoint(disk: Disk, path: str, fields: int) -> list[list[str]]:
    """Entries of `fields` whitespace-separated fields each; [] when the file is missing."""
    try:
        text = read_whole(disk, path).decode("ascii")
    except DiskError:
        return []
    except UnicodeDecodeError:
        raise CheckpointError(f"{path}: not a text checkpoint file") from None
    lines = text.splitlines()
    if len(lines) < 2:
        raise CheckpointError(f"{path}: expected a version and a count line, got {len(lines)} lines")
    if lines[0].strip() != str(VERSION):
        raise CheckpointError(f"{path}:1: unsupported checkpoint version {lines[0].strip()!r}")
    try:
        count = int(lines[1])
    except ValueError:
        raise CheckpointError(f"{path}:2: entry count {lines[1]!r} is not an integer") from None
    entries = [line.split() for line in lines[2:] if line.strip()]
    if len(entries) != count:
        raise CheckpointError(f"{path}: header says {count} entries, found {len(entries)}")
    for i, e in enumerate(entries):
        if len(e) != fields:
            raise CheckpointError(f"{path}:{i + 3}: expected {fields} fields, got {' '.join(e)!r}")
    return entries
