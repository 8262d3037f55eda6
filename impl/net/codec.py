"""Kafka's wire format: size-prefixed frames, request and response headers, and each
API's body, read and written with kio (Kafka's JSON message definitions generated as
Python dataclasses and a native codec) instead of hand-written schemas.

`make(cls, values)` builds any kio entity from plain dicts: fields a version lacks are
ignored, fields not given take their zero, so one translation serves every version.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import struct
import typing
import uuid
from dataclasses import dataclass
from functools import cache

from kafkaproof.impl.storage.disk import FileRegion
from kio.index import KioIndexError, load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode as KioErrorCode
from kio.serial import entity_reader, entity_writer

SIZE = struct.Struct(">i")
API_VERSIONS = 18


class WireError(ValueError):
    """Bytes that are not a Kafka request; the message says what was wrong."""


class UnsupportedRequest(WireError):
    """A well-framed request of an API or version this broker does not speak."""

    def __init__(self, api_key: int, version: int, correlation_id: int) -> None:
        super().__init__(f"api key {api_key} version {version} is not supported")
        self.api_key, self.version, self.correlation_id = api_key, version, correlation_id


@dataclass(frozen=True)
class Request:
    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    body: object  # the kio request entity
    trailing: int = 0  # bytes after the body (ignored)


def decode_request(frame: bytes | memoryview) -> Request:
    if len(frame) < 8:
        raise WireError(f"a request of {len(frame)} bytes is shorter than its header (8 bytes at least)")
    api_key, version, correlation_id = struct.unpack_from(">hhi", frame)
    try:
        cls = load_request_schema(api_key, version)
    except KioIndexError:
        raise UnsupportedRequest(api_key, version, correlation_id) from None
    try:
        header, used = entity_reader(cls.__header_schema__)(frame, 0)
        body, size = entity_reader(cls)(frame, used)
    except Exception as e:  # kio raises its own errors, and KeyError for an unknown tagged field
        raise WireError(f"api key {api_key} v{version}: undecodable body ({type(e).__name__}: {e})") from None
    # Bytes after the body are ignored, as Kafka's own parser does: librdkafka 2.x sends
    # Metadata v12 with fields the schema no longer has (IncludeClusterAuthorizedOperations).
    return Request(api_key, version, correlation_id, header.client_id, body, len(frame) - used - size)


class _Parts:
    """A buffer for kio's writers that keeps a FileRegion (records left in their segment
    file) as a part of its own instead of copying it: kio only takes its len() and hands
    it to write()."""

    def __init__(self) -> None:
        self.parts: list = [bytearray(4)]

    def write(self, data) -> None:
        if isinstance(data, FileRegion):
            self.parts += [data, bytearray()]
        else:
            self.parts[-1] += data


def encode_response(api_key: int, version: int, correlation_id: int, values: dict) -> bytes | list:
    """The framed response: bytes, or a list of bytes and FileRegions to send in order."""
    cls = load_response_schema(api_key, version)
    out = _Parts()
    entity_writer(cls.__header_schema__)(out, make(cls.__header_schema__, {"correlation_id": correlation_id}))
    entity_writer(cls)(out, make(cls, values))
    SIZE.pack_into(out.parts[0], 0, sum(len(p) for p in out.parts) - 4)
    if len(out.parts) == 1:
        return bytes(out.parts[0])
    return [p if isinstance(p, FileRegion) else bytes(p) for p in out.parts if len(p)]


def encode_request(api_key: int, version: int, correlation_id: int, values: dict,
                   client_id: str = "kafkaproof") -> bytes:
    """For tests and benchmarks: a request as a client would frame it."""
    cls = load_request_schema(api_key, version)
    out = io.BytesIO()
    header = make(cls.__header_schema__, {"request_api_key": api_key, "request_api_version": version,
                                          "correlation_id": correlation_id, "client_id": client_id})
    entity_writer(cls.__header_schema__)(out, header)
    entity_writer(cls)(out, make(cls, values))
    return SIZE.pack(len(out.getvalue())) + out.getvalue()


def decode_response(api_key: int, version: int, frame: bytes) -> object:
    cls = load_response_schema(api_key, version)
    _, used = entity_reader(cls.__header_schema__)(frame, 0)
    return entity_reader(cls)(frame, used)[0]


# -- building entities from plain values -------------------------------------------------


@cache
def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def _strip_optional(hint):
    if typing.get_origin(hint) is typing.Union or type(hint).__name__ == "UnionType":
        return next((a for a in typing.get_args(hint) if a is not type(None)), hint)
    return hint


def _nested(hint) -> type | None:
    """The entity class of a nested field (one entity or a tuple of them), if any."""
    hint = _strip_optional(hint)
    args = typing.get_args(hint)
    inner = args[0] if typing.get_origin(hint) is tuple and args else hint
    return inner if dataclasses.is_dataclass(inner) else None


def _is_array(hint) -> bool:
    return typing.get_origin(_strip_optional(hint)) is tuple


def _optional(hint) -> bool:
    return type(None) in typing.get_args(hint)


def _convert(value, kafka_type: str | None, hint):
    if value is None:
        return None
    entity = _nested(hint)
    if entity is not None:
        if _is_array(hint):
            return tuple(make(entity, v) if isinstance(v, dict) else v for v in value)
        return make(entity, value) if isinstance(value, dict) else value
    if kafka_type == "error_code":
        return KioErrorCode(int(value))
    if kafka_type in ("timedelta_i32", "timedelta_i64") and isinstance(value, int):
        return datetime.timedelta(milliseconds=value)
    if kafka_type == "datetime_i64" and isinstance(value, int):
        return None if value < 0 else datetime.datetime.fromtimestamp(value / 1000, datetime.UTC)
    if _is_array(hint):
        return tuple(value)
    return value


_ZEROS = {"string": "", "bool": False, "bytes": b"", "records": None, "uuid": uuid.UUID(int=0),
          "error_code": KioErrorCode(0), "timedelta_i32": datetime.timedelta(0),
          "timedelta_i64": datetime.timedelta(0), "datetime_i64": None, "float64": 0.0}


def _zero(kafka_type: str | None, hint):
    if _optional(hint):
        return None
    if _is_array(hint):
        return ()
    entity = _nested(hint)
    if entity is not None:
        return make(entity, {})
    return _ZEROS.get(kafka_type or "", 0)


def make(cls: type, values: dict):
    """A `cls` entity: `values` where given (extra keys ignored), zeros elsewhere."""
    hints = _hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        kafka_type = f.metadata.get("kafka_type")
        if f.name in values:
            kwargs[f.name] = _convert(values[f.name], kafka_type, hints[f.name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            kwargs[f.name] = _zero(kafka_type, hints[f.name])
    return cls(**kwargs)


def value(entity, name: str, default=None):
    """A field of a request entity, or `default` at versions without it."""
    got = getattr(entity, name, default)
    if isinstance(got, datetime.timedelta):
        return int(got.total_seconds() * 1000)
    return got
