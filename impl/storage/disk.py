"""One storage interface, two backends: `RealDisk` (files) and `SimDisk` (a disk that can lie).

The log only ever appends to, reads from, truncates and fsyncs files, and replaces
small checkpoint files atomically. Keeping the interface that small is what lets
`SimDisk` model exactly what survives which failure:

- a *process crash* loses nothing that was written: the OS page cache survives;
- a *power loss* keeps only fsynced bytes; the first write after the last fsync
  may survive torn at a random byte boundary (seeded), later ones are lost;
  an unfsynced truncation is undone;
- a *corruption* fault flips bits in a chosen byte range.

Directory operations (create, delete, rename) are durable at once in `SimDisk`,
as on a journaling filesystem that orders metadata; Kafka makes the same
assumption when it renames `.swap`/`.deleted` files.
"""

from __future__ import annotations

import os
import posixpath
import random
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol


class DiskError(OSError):
    """A storage operation that cannot be done (missing file, bad path)."""


class Disk(Protocol):
    def mkdirs(self, path: str) -> None: ...
    def listdir(self, path: str) -> list[str]: ...
    def isdir(self, path: str) -> bool: ...
    def exists(self, path: str) -> bool: ...
    def size(self, path: str) -> int: ...
    def create(self, path: str) -> None: ...
    def read(self, path: str, pos: int, n: int) -> bytes: ...
    def append(self, path: str, data: bytes | bytearray | memoryview) -> int: ...
    def truncate(self, path: str, size: int) -> None: ...
    def fsync(self, path: str) -> None: ...
    def delete(self, path: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class FileRegion:
    """Bytes of a file left on disk: a consumer fetch's answer that the real runtime
    sends with `os.sendfile`, never copying the records through Python (Kafka's
    FileRecords / zero-copy transfer). Stands in for the bytes where only their length
    and last offset are needed."""

    path: str  # absolute
    position: int
    length: int
    last_offset: int  # of the last batch in it

    def __len__(self) -> int:
        return self.length

    def __bool__(self) -> bool:
        return self.length > 0

    def read(self) -> bytes:
        with open(self.path, "rb") as f:
            return os.pread(f.fileno(), self.length, self.position)


def write_atomically(disk: Disk, path: str, data: bytes) -> None:
    """Replace a small file so a crash leaves the old or the new content, never a mix.

    Kafka's CheckpointFile does the same: write `path.tmp`, fsync, rename over `path`.
    """
    tmp = path + ".tmp"
    if disk.exists(tmp):
        disk.delete(tmp)
    disk.create(tmp)
    disk.append(tmp, data)
    disk.fsync(tmp)
    disk.rename(tmp, path)


def read_whole(disk: Disk, path: str) -> bytes:
    return disk.read(path, 0, disk.size(path))


class RealDisk:
    """Files on the local filesystem; paths are relative to `root`.

    File descriptors are cached (bounded, least recently used closed first) so that
    appending a batch costs one `write` system call, as it does in Kafka.
    """

    MAX_OPEN_FILES = 256

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._sizes: dict[str, int] = {}

    def _abs(self, path: str) -> str:
        return os.path.join(self.root, path)

    def _fd(self, path: str) -> int:
        fd = self._fds.get(path)
        if fd is not None:
            self._fds.move_to_end(path)
            return fd
        try:
            fd = os.open(self._abs(path), os.O_RDWR | os.O_APPEND)
        except FileNotFoundError:
            raise DiskError(f"no such file: {path}") from None
        self._fds[path] = fd
        self._sizes[path] = os.fstat(fd).st_size
        if len(self._fds) > self.MAX_OPEN_FILES:
            old, old_fd = self._fds.popitem(last=False)
            self._sizes.pop(old, None)
            os.close(old_fd)
        return fd

    def _forget(self, path: str) -> None:
        fd = self._fds.pop(path, None)
        self._sizes.pop(path, None)
        if fd is not None:
            os.close(fd)

    def mkdirs(self, path: str) -> None:
        os.makedirs(self._abs(path), exist_ok=True)

    def listdir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(self._abs(path)))
        except FileNotFoundError:
            raise DiskError(f"no such directory: {path}") from None

    def isdir(self, path: str) -> bool:
        return os.path.isdir(self._abs(path))

    def exists(self, path: str) -> bool:
        return os.path.exists(self._abs(path))

    def size(self, path: str) -> int:
        self._fd(path)
        return self._sizes[path]

    def create(self, path: str) -> None:
        self._forget(path)
        fd = os.open(self._abs(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
        os.close(fd)

    def rmdir(self, path: str) -> None:
        os.rmdir(self._abs(path))

    def region(self, path: str, pos: int, n: int, last_offset: int) -> FileRegion:
        return FileRegion(self._abs(path), pos, n, last_offset)

    def read(self, path: str, pos: int, n: int) -> bytes:
        return os.pread(self._fd(path), n, pos)

    def append(self, path: str, data: bytes | bytearray | memoryview) -> int:
        fd = self._fd(path)
        pos = self._sizes[path]
        view = memoryview(data)
        while view:  # a short write is legal; loop until all bytes are in
            written = os.write(fd, view)
            view = view[written:]
        self._sizes[path] = pos + len(data)
        return pos

    def truncate(self, path: str, size: int) -> None:
        fd = self._fd(path)
        os.ftruncate(fd, size)
        self._sizes[path] = min(size, self._sizes[path])

    def fsync(self, path: str) -> None:
        os.fsync(self._fd(path))

    def delete(self, path: str) -> None:
        self._forget(path)
        try:
            os.remove(self._abs(path))
        except FileNotFoundError:
            raise DiskError(f"no such file: {path}") from None

    def rename(self, src: str, dst: str) -> None:
        self._forget(src)
        self._forget(dst)
        os.replace(self._abs(src), self._abs(dst))

    def close(self) -> None:
        for path in list(self._fds):
            self._forget(path)


@dataclass
class _SimFile:
    data: bytearray = field(default_factory=bytearray)  # what readers see: the page cache
    durable: bytes = b""  # what is on the platter
    first_unsynced_write: tuple[int, bytes] | None = None  # (position, bytes) since last fsync


class SimDisk:
    """An in-memory disk that distinguishes written, fsynced and lost bytes."""

    def __init__(self) -> None:
        self._files: dict[str, _SimFile] = {}
        self._dirs: set[str] = {""}
        self.fsyncs = 0  # how many fsyncs were issued: the cost the flush policy pays

    # -- interface --------------------------------------------------------------------

    def _file(self, path: str) -> _SimFile:
        try:
            return self._files[path]
        except KeyError:
            raise DiskError(f"no such file: {path}") from None

    def mkdirs(self, path: str) -> None:
        path = posixpath.normpath(path)
        while path not in ("", ".", "/"):
            self._dirs.add(path)
            path = posixpath.dirname(path)

    def listdir(self, path: str) -> list[str]:
        path = posixpath.normpath(path)
        if path not in self._dirs and path != ".":
            raise DiskError(f"no such directory: {path}")
        prefix = "" if path == "." else path + "/"
        names = {
            p[len(prefix):].split("/", 1)[0]
            for p in list(self._files) + list(self._dirs)
            if p.startswith(prefix) and p != path
        }
        return sorted(names)

    def isdir(self, path: str) -> bool:
        return posixpath.normpath(path) in self._dirs

    def exists(self, path: str) -> bool:
        return path in self._files or posixpath.normpath(path) in self._dirs

    def size(self, path: str) -> int:
        return len(self._file(path).data)

    def create(self, path: str) -> None:
        parent = posixpath.dirname(path)
        if parent and parent not in self._dirs:
            raise DiskError(f"no such directory: {parent}")
        self._files[path] = _SimFile()

    def read(self, path: str, pos: int, n: int) -> bytes:
        return bytes(self._file(path).data[pos : pos + n])

    def append(self, path: str, data: bytes | bytearray | memoryview) -> int:
        f = self._file(path)
        pos = len(f.data)
        f.data += data
        if f.first_unsynced_write is None:
            f.first_unsynced_write = (pos, bytes(data))
        return pos

    def truncate(self, path: str, size: int) -> None:
        f = self._file(path)
        del f.data[size:]
        if f.first_unsynced_write is None:
            f.first_unsynced_write = (size, b"")

    def fsync(self, path: str) -> None:
        f = self._file(path)
        f.durable = bytes(f.data)
        f.first_unsynced_write = None
        self.fsyncs += 1

    def delete(self, path: str) -> None:
        self._file(path)
        del self._files[path]

    def rename(self, src: str, dst: str) -> None:
        self._files[dst] = self._file(src)
        del self._files[src]

    def close(self) -> None:
        pass

    # -- faults -----------------------------------------------------------------------

    def unsynced_bytes(self) -> int:
        """Bytes a power loss right now could lose or revert."""
        return sum(
            abs(len(f.data) - len(f.durable)) + (f.data[: len(f.durable)] != f.durable)
            for f in self._files.values()
        )

    def power_loss(self, rng: random.Random, tear: bool = True) -> list[str]:
        """Lose everything not fsynced; returns the files whose content changed.

        With `tear`, the first unsynced write of a file survives cut at a random byte
        (a torn write): a strict prefix of it, so the tail is never whole and valid.
        """
        changed = []
        for path in sorted(self._files):  # sorted: rng draws in a fixed order
            f = self._files[path]
            if f.first_unsynced_write is None:
                continue
            content = bytearray(f.durable)
            pos, written = f.first_unsynced_write
            if tear and written and pos == len(content) and rng.random() < 0.5:
                content += written[: rng.randrange(len(written))]
            if content != f.data:
                changed.append(path)
            f.data = content
            f.durable = bytes(content)
            f.first_unsynced_write = None
        return changed

    def corrupt(self, path: str, start: int, end: int, rng: random.Random, flips: int = 1) -> None:
        """Flip `flips` random bits in bytes [start, end) of both page cache and platter."""
        f = self._file(path)
        end = min(end, len(f.data))
        if start >= end:
            raise DiskError(f"nothing to corrupt in {path}[{start}:{end}]")
        for _ in range(flips):
            i = rng.randrange(start, end)
            f.data[i] ^= 1 << rng.randrange(8)
            if i < len(f.durable):
                durable = bytearray(f.durable)
                durable[i] = f.data[i]
                f.durable = bytes(durable)
