"""The encoding of what the cluster's own processes send each other (impl/net/peers.py)
and of the controller's metadata file: explicit, versioned, and unable to run code.

Pickle was used before; anyone who could reach a peer port could have run code in the
broker. Here a value is one of a closed set of shapes - None, bool, int, float, str,
bytes, tuple/list, dict - or an instance of a *registered* type (the message dataclasses
of impl/protocol/messages.py, TopicPartition, ErrorCode, the peers' Hello and Where, the
controller's ClusterMetadata), written as its registered name and its fields in
declaration order. Decoding builds only registered types, with the field count their
declaration has (or fewer, when the missing trailing ones have defaults: an older
writer's record), and refuses anything else (an unknown tag or name, a short or long
buffer, nesting deeper than MAX_DEPTH) with FrameError: the link that sent it is closed.

A frame starts with MAGIC and VERSION: a peer of another encoding version is refused
by name, not misread.
"""

from __future__ import annotations

import dataclasses
import enum
import struct

MAGIC = b"KP"
VERSION = 1
MAX_DEPTH = 32
_I64, _F64, _U32 = struct.Struct(">q"), struct.Struct(">d"), struct.Struct(">I")


class FrameError(ValueError):
    """Not a frame this encoding wrote: the connection that sent it is closed."""


class Registry:
    """The types a frame may hold, by name. A dataclass or NamedTuple is written as its
    fields in order; an IntEnum as its value."""

    def __init__(self, types) -> None:
        self.by_name: dict[str, type] = {}
        for t in types:
            if t.__name__ in self.by_name and self.by_name[t.__name__] is not t:
                raise ValueError(f"two registered types named {t.__name__}")
            self.by_name[t.__name__] = t
        self.fields = {name: _field_names(t) for name, t in self.by_name.items() if not issubclass(t, enum.Enum)}
        self.required = {name: _required(self.by_name[name]) for name in self.fields}

    # -- encoding ------------------------------------------------------------------------------

    def encode(self, value) -> bytes:
        out = bytearray(MAGIC)
        out.append(VERSION)
        self._put(out, value, 0)
        return bytes(out)

    def _put(self, out: bytearray, v, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise FrameError(f"nested deeper than {MAX_DEPTH}")
        t = type(v)
        name = t.__name__
        if v is None:
            out += b"N"
        elif v is True or v is False:
            out += b"T" if v else b"F"
        elif name in self.by_name and self.by_name[name] is t:
            if isinstance(v, enum.Enum):
                out += b"E"
                self._str(out, name)
                out += _I64.pack(v.value)
                return
            out += b"O"
            self._str(out, name)
            names = self.fields[name]
            out += _U32.pack(len(names))
            for f in names:
                self._put(out, getattr(v, f), depth + 1)
        elif t is int:
            out += b"I" + _I64.pack(v)
        elif t is float:
            out += b"D" + _F64.pack(v)
        elif t is str:
            out += b"S"
            self._str(out, v)
        elif t in (bytes, bytearray, memoryview):
            data = bytes(v)
            out += b"B" + _U32.pack(len(data)) + data
        elif t in (tuple, list):
            out += b"L" if t is tuple else b"l"
            out += _U32.pack(len(v))
            for item in v:
                self._put(out, item, depth + 1)
        elif t is dict:
            out += b"M" + _U32.pack(len(v))
            for k, item in v.items():
                self._put(out, k, depth + 1)
                self._put(out, item, depth + 1)
        elif t in (set, frozenset):
            out += b"s" if t is set else b"f"
            out += _U32.pack(len(v))
            for item in sorted(v, key=repr):
                self._put(out, item, depth + 1)
        else:
            raise FrameError(f"{name} is not a type peers exchange (register it in impl/net/peers.py)")

    @staticmethod
    def _str(out: bytearray, s: str) -> None:
        data = s.encode()
        out += _U32.pack(len(data)) + data

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, data: bytes):
        if data[:2] != MAGIC:
            raise FrameError("not a kafkaproof peer frame (a pickle, garbage, or another protocol)")
        if len(data) < 3 or data[2] != VERSION:
            raise FrameError(f"peer frame version {data[2] if len(data) > 2 else '?'}; this process speaks {VERSION}")
        reader = _Reader(data, 3)
        value = self._get(reader, 0)
        if reader.at != len(data):
            raise FrameError(f"{len(data) - reader.at} bytes after the value")
        return value

    def _get(self, r: _Reader, depth: int):
        if depth > MAX_DEPTH:
            raise FrameError(f"nested deeper than {MAX_DEPTH}")
        tag = r.take(1)
        if tag == b"N":
            return None
        if tag in (b"T", b"F"):
            return tag == b"T"
        if tag == b"I":
            return _I64.unpack(r.take(8))[0]
        if tag == b"D":
            return _F64.unpack(r.take(8))[0]
        if tag == b"S":
            return r.text()
        if tag == b"B":
            return r.take(r.count())
        if tag in (b"L", b"l", b"s", b"f"):
            items = [self._get(r, depth + 1) for _ in range(r.count())]
            return {b"L": tuple, b"l": list, b"s": set, b"f": frozenset}[tag](items)
        if tag == b"M":
            out = {}
            for _ in range(r.count()):
                k = self._get(r, depth + 1)
                try:
                    out[k] = self._get(r, depth + 1)
                except TypeError:
                    raise FrameError("an unhashable dict key") from None
            return out
        if tag in (b"O", b"E"):
            name = r.text()
            t = self.by_name.get(name)
            if t is None:
                raise FrameError(f"unknown type {name!r}")
            if tag == b"E":
                if not issubclass(t, enum.Enum):
                    raise FrameError(f"{name} is not an enum")
                try:
                    return t(_I64.unpack(r.take(8))[0])
                except ValueError as e:
                    raise FrameError(str(e)) from None
            names = self.fields.get(name)
            if names is None:
                raise FrameError(f"{name} is an enum, not a record")
            n = r.count()
            # Fewer is an older writer's record: the fields added since (at the end, each
            # with a default) take their defaults - a metadata file outlives a release.
            if not self.required[name] <= n <= len(names):
                raise FrameError(f"{name} with {n} fields; it has {len(names)}")
            values = [self._get(r, depth + 1) for _ in range(n)]
            try:
                return t(*values)
            except TypeError as e:
                raise FrameError(f"{name}: {e}") from None
        raise FrameError(f"unknown tag {tag!r} at byte {r.at - 1}")


class _Reader:
    def __init__(self, data: bytes, at: int) -> None:
        self.data, self.at = data, at

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise FrameError("the frame ends inside a value")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def count(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def text(self) -> str:
        try:
            return self.take(self.count()).decode()
        except UnicodeDecodeError:
            raise FrameError("a string that is not UTF-8") from None


def _required(t: type) -> int:
    """How many leading fields have no default."""
    if dataclasses.is_dataclass(t):
        return sum(1 for f in dataclasses.fields(t) if f.init and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING)
    return len(t._fields) - len(t._field_defaults)


def _field_names(t: type) -> tuple[str, ...]:
    if dataclasses.is_dataclass(t):
        return tuple(f.name for f in dataclasses.fields(t) if f.init)
    if issubclass(t, tuple) and hasattr(t, "_fields"):
        return tuple(t._fields)
    raise ValueError(f"{t.__name__}: only dataclasses, NamedTuples and enums can be registered")


def message_types() -> list[type]:
    """Every dataclass and NamedTuple of impl/protocol/messages.py, and ErrorCode."""
    from kafkaproof.impl.protocol import messages
    from kafkaproof.impl.protocol.errors import ErrorCode

    found = [v for v in vars(messages).values() if isinstance(v, type) and v.__module__ == messages.__name__
             and (dataclasses.is_dataclass(v) or (issubclass(v, tuple) and hasattr(v, "_fields")))]
    return sorted(found, key=lambda t: t.__name__) + [ErrorCode]
