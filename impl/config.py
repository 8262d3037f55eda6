"""Configuration in Kafka's own words: `.properties` files, Kafka's keys, types and defaults.

Every scope (broker, producer, consumer) declares its keys once as `Key`s; `resolve`
turns raw strings into typed values. An unknown key or a bad value is a `ConfigError`
naming the key and where it came from; nothing falls back to a default silently.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LONG_MAX = (1 << 63) - 1
INT_MAX = (1 << 31) - 1


class ConfigError(ValueError):
    """A configuration the user wrote that cannot be used; the message names the key."""


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # int | long | bool | string | double | list
    default: Any
    doc: str
    check: Callable[[Any], str | None] | None = None  # returns what is wrong, or None


def at_least(n: int) -> Callable[[Any], str | None]:
    return lambda v: None if v is None or v >= n else f"must be at least {n}"


def one_of(*allowed: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in allowed else f"must be one of {', '.join(allowed)}"


def _parse_value(key: Key, text: str) -> Any:
    text = text.strip()
    if key.type in ("int", "long"):
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"expected an integer, got {text!r}") from None
        limit = INT_MAX if key.type == "int" else LONG_MAX
        if not -limit - 1 <= value <= limit:
            raise ValueError(f"{value} does not fit in a Java {key.type}")
        return value
    if key.type == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() == "true"
    if key.type == "double":
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
    if key.type == "list":
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def parse_properties(text: str, source: str = "<properties>") -> dict[str, tuple[str, str]]:
    """Java `.properties` syntax: `key=value`, `key: value` or `key value`; `#`/`!` comments;
    a trailing backslash continues a line. Returns key -> (value, "source:line")."""
    out: dict[str, tuple[str, str]] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno = i + 1
        line = lines[i].lstrip()
        i += 1
        if not line or line[0] in "#!":
            continue
        while line.endswith("\\") and not line.endswith("\\\\") and i < len(lines):
            line = line[:-1] + lines[i].lstrip()
            i += 1
        sep = min((p for p in (line.find("="), line.find(":"), _first_space(line)) if p >= 0), default=-1)
        if sep < 0:
            key, value = line.strip(), ""
        else:
            key, value = line[:sep].strip(), line[sep + 1 :].strip()
            if value[:1] in ("=", ":") and _first_space(line) == sep:
                value = value[1:].strip()
        if not key:
            raise ConfigError(f"{source}:{lineno}: a line with a value but no key: {lines[lineno - 1]!r}")
        out[key] = (value, f"{source}:{lineno}")
    return out


def _first_space(line: str) -> int:
    for i, ch in enumerate(line):
        if ch in " \t":
            return i
    return -1


def load_properties(path: str) -> dict[str, tuple[str, str]]:
    try:
        with open(path, encoding="utf-8") as f:
            return parse_properties(f.read(), path)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such configuration file ({exc.strerror})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read configuration file: {exc}") from None


def parse_override(item: str) -> tuple[str, str]:
    """A command line's `--set key=value`."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r}: expected key=value")
    return key.strip(), value.strip()


def resolve(
    keys: Iterable[Key], raw: Mapping[str, str | tuple[str, str]], scope: str
) -> dict[str, Any]:
    """Typed values for every key of the scope: Kafka's default unless `raw` sets it."""
    by_name = {k.name: k for k in keys}
    values = {name: k.default for name, k in by_name.items()}
    for name, entry in raw.items():
        text, where = entry if isinstance(entry, tuple) else (entry, "override")
        key = by_name.get(name)
        if key is None:
            close = difflib.get_close_matches(name, by_name, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown {scope} configuration key {name!r}{hint}")
        try:
            value = _parse_value(key, text)
        except ValueError as exc:
            raise ConfigError(f"{where}: {name}: {exc}") from None
        problem = key.check(value) if key.check else None
        if problem:
            raise ConfigError(f"{where}: {name}={text}: {problem}")
        values[name] = value
    return values
