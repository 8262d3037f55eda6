"""Jepsen's Kafka-workload histories on disk: its EDN (history.edn, one operation per
line, as Jepsen's store writes it) and kafkaproof's native JSON-lines form of the same
model (properties/jepsen_kafka.py), read and written.

The EDN reader is this module's own. edn_format (the EDN library on PyPI) parses one
operation in ~0.7 ms, eleven minutes for a million-operation history; this one is a
single regular expression over the text and a stack. The suite checks it against
edn_format on every history it transcribes and on generated values.

EDN keywords read as `Keyword` (a str: `:send` equals "send"), so the analysis needs no
second vocabulary and a history written back keeps its keywords. Tagged literals keep
their value (`#jepsen.history.Op{...}` is the map). JSON has only string map keys, so
the native form writes a poll's {key: records} as [[key, records], ...].

A file that is not such a history, or that stops short, is a HistoryError naming the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from kafkaproof.properties import without_cyclic_gc

# Jepsen's Kafka workload (jepsen.tests.kafka): the client's operations, and what its
# crash generator and the tests' debugging add.
CLIENT_FS = frozenset({"send", "poll", "txn", "assign", "subscribe", "crash", "debug-topic-partitions"})
TYPES = frozenset({"invoke", "ok", "info", "fail"})
NEMESIS = "nemesis"


class HistoryError(ValueError):
    """A history file that cannot be judged: the message names the line and the reason."""


class Keyword(str):
    """An EDN keyword: equal to its name as a str, written back with its colon."""

    __slots__ = ()


class Symbol(str):
    __slots__ = ()


# Every token, newlines included (to count lines); spaces and commas are what it skips.
_TOKENS = re.compile(r"""\n|;[^\n]*|\#\{|[\[\](){}]|"(?:[^"\\]|\\.)*"|"|\#_|\#[A-Za-z][^\s,\[\](){}"]*"""
                     r"""|\\(?:newline|space|tab|return|u[0-9A-Fa-f]{4}|\S)|[^\s,\[\](){}"\\;]+""", re.DOTALL)
_INT = re.compile(r"[+-]?\d+N?")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?")
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r"}
_RAW = str.maketrans({"\n": "\\n", "\t": "\\t", "\r": "\\r"})  # allowed raw in EDN strings, not JSON
_MISSING = object()
_CLOSERS = {"[": "]", "(": ")", "{": "}", "#{": "}"}


def _atom(text: str):
    c = text[0]
    if c.isdigit() or (c in "+-" and text[1:2].isdigit()):
        if _INT.fullmatch(text):
            return int(text.rstrip("N"))
        if _FLOAT.fullmatch(text):
            return float(text.rstrip("M"))
    if text == "nil":
        return None
    if text in ("true", "false"):
        return text == "true"
    return Symbol(text)


def _frozen(v):
    """A map key or set member must hash: vectors become tuples."""
    return tuple(_frozen(x) for x in v) if isinstance(v, list) else v


def _close(kind: str, items: list, where: int):
    if kind == "{":
        if len(items) % 2:
            raise HistoryError(f"line {where}: a map with an odd number of forms")
        pairs = iter(items)
        try:
            return dict(zip(pairs, pairs, strict=False))
        except TypeError:  # a vector as a key
            return {_frozen(items[i]): items[i + 1] for i in range(0, len(items), 2)}
    if kind == "#{":
        return frozenset(_frozen(x) for x in items)
    return items


def edn_forms(text: str) -> Iterable[tuple[int, object]]:
    """Each top-level form of `text` with the line it starts on."""
    stack: list[tuple[str, list, int]] = []  # (opener, items, line)
    pending: list[str] = []  # tags and #_ waiting for the next form, innermost last
    atoms: dict[str, object] = {}  # token -> its value: keywords and numbers repeat
    missing = atoms.get  # (bound once: this loop runs for every token of the file)
    line = 1
    items: list | None = None  # the innermost open collection's items
    for token in _TOKENS.findall(text):
        value, c = missing(token, _MISSING), ""
        if value is _MISSING:
            c = token[0]
            if c == "\n":
                line += 1
                continue
            if c in "[({" or token == "#{":
                stack.append((token, [], line))
                items = stack[-1][1]
                pending.append("(")  # a tag before the opener applies after it closes
                continue
            if c in "])}":
                if not stack or _CLOSERS[stack[-1][0]] != token:
                    raise HistoryError(f"line {line}: unbalanced {token!r}")
                opener, done, at = stack.pop()
                items = stack[-1][1] if stack else None
                pending.pop()
                value = _close(opener, done, at)
            elif c == "#":
                pending.append(token)
                continue
            elif c == '"':
                if len(token) == 1:
                    raise HistoryError(f"the history is truncated: a string opened on line {line} never ends")
                value = json.loads(token.translate(_RAW))
                line += token.count("\n")
            elif c == ";":
                continue
            elif c == "\\":
                body = token[1:]
                value = _CHARS.get(body, chr(int(body[1:], 16)) if len(body) == 5 and body[0] == "u" else body)
            else:
                value = atoms[token] = Keyword(token[1:]) if c == ":" else _atom(token)
        if pending and pending[-1] != "(":
            mark = pending.pop()
            if mark == "#_":
                continue
            if mark in ("#inst", "#uuid"):
                value = str(value)
        if items is not None:
            items.append(value)
        else:  # a top-level form: its line is where it opened
            yield (at if c in "])}" else line), value
    if stack:
        raise HistoryError(f"the history is truncated: a {stack[-1][0]!r} opened on line {stack[-1][2]}"
                           " is never closed")


def dumps_edn(v) -> str:
    if isinstance(v, Keyword):
        return ":" + v
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{dumps_edn(k)} {dumps_edn(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (set, frozenset)):
        return "#{" + " ".join(sorted(dumps_edn(x) for x in v)) + "}"
    return "[" + " ".join(dumps_edn(x) for x in v) + "]"


# -- operations -------------------------------------------------------------------------

_OP_KEYWORDS = ("type", "f")
_FIELDS = ("index", "time", "type", "process", "f", "value")


def _as_edn(op: dict) -> dict:
    """Jepsen's spelling: its fields as keywords, and type, f, a nemesis process and each
    micro-operation's name too."""
    out = {}
    for k in (*_FIELDS, *(k for k in op if k not in _FIELDS)):
        if k not in op:
            continue
        v = op[k]
        if k in _OP_KEYWORDS or (k == "process" and v == NEMESIS):
            v = Keyword(v)
        elif k == "value" and op.get("f") in ("send", "poll", "txn") and isinstance(v, list):
            v = [[Keyword(mop[0]), *mop[1:]] for mop in v]
        out[Keyword(k)] = v
    return out


def numbered(ops: list[dict], header: dict) -> tuple[list[dict], dict]:
    """`ops` with each client process a number, as Jepsen's checkers require (its
    client-ops are the integer processes); the names go into the header."""
    names: dict[object, int] = {}
    out = []
    for op in ops:
        process = op.get("process")
        if process != NEMESIS and not isinstance(process, int):
            op = {**op, "process": names.setdefault(process, len(names))}
        out.append(op)
    return out, {**header, **({"processes": {n: str(p) for p, n in names.items()}} if names else {})}


def write_edn(ops: Iterable[dict], header: dict | None = None) -> str:
    """history.edn: one operation a line. `header` goes into a comment, which Jepsen's
    reader skips and this module's reads back."""
    head = f"; kafkaproof {json.dumps(header, sort_keys=True)}\n" if header else ""
    return head + "".join(dumps_edn(_as_edn(op)) + "\n" for op in ops)


def _jsonable(op: dict) -> dict:
    value = op.get("value")
    if op.get("f") in ("poll", "txn") and isinstance(value, list):
        value = [[mop[0], [[k, recs] for k, recs in mop[1].items()]] if mop[0] == "poll" and len(mop) > 1
                 and isinstance(mop[1], dict) else mop for mop in value]
    out = {**op, "value": value}
    if isinstance(op.get("log-end"), dict):  # {key: offset}: keys may be numbers
        out["log-end"] = [[k, end] for k, end in op["log-end"].items()]
    return out


def _set_as_list(v):
    if isinstance(v, (set, frozenset)):
        return sorted(v, key=repr)
    raise TypeError(f"{type(v).__name__} in a history operation")


def write_jsonl(ops: Iterable[dict], header: dict | None = None) -> str:
    """The native form: a header line {"kafkaproof-history": 1, ...}, then one JSON
    operation a line."""
    head = json.dumps({"kafkaproof-history": 1, **(header or {})}, sort_keys=True) + "\n"
    return head + "".join(json.dumps(_jsonable(op), separators=(",", ":"), default=_set_as_list) + "\n" for op in ops)


def _from_json(op: dict) -> dict:
    if isinstance(op.get("log-end"), list):
        op["log-end"] = {(tuple(k) if isinstance(k, list) else k): end for k, end in op["log-end"]}
    value = op.get("value")
    if op.get("f") in ("poll", "txn") and isinstance(value, list):
        op["value"] = [[mop[0], {(tuple(k) if isinstance(k, list) else k): recs for k, recs in mop[1]}]
                       if mop and mop[0] == "poll" and len(mop) > 1 and isinstance(mop[1], list) else mop
                       for mop in value]
    return op


def parse(text: str, name: str = "the history") -> tuple[list[dict], dict]:
    """The operations of an EDN or JSON-lines history and its header (kafkaproof's, if it
    wrote one), checked as a Kafka-workload history."""
    with without_cyclic_gc():
        return _parse(text, name)


def _parse(text: str, name: str) -> tuple[list[dict], dict]:
    stripped = text.lstrip()
    if not stripped:
        raise HistoryError(f"{name} is empty")
    header: dict = {}
    if stripped.startswith("{\"") or stripped.startswith("{}"):
        rows = []
        lines = text.splitlines()
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                cut = i == len(lines) and not text.endswith("\n")
                raise HistoryError(f"{name}, line {i}: " + ("the history is truncated (its last line stops"
                                                           " mid-operation)" if cut else f"not JSON ({e.msg})")) from None
            if i == 1 and isinstance(row, dict) and "kafkaproof-history" in row:
                header = row
                continue
            rows.append((i, _from_json(row) if isinstance(row, dict) else row))
    else:
        first = stripped.splitlines()[0]
        if first.startswith("; kafkaproof "):
            header = json.loads(first[len("; kafkaproof "):])
        try:
            forms = list(edn_forms(text))
        except HistoryError as e:
            raise HistoryError(f"{name}: {e}") from None
        if len(forms) == 1 and isinstance(forms[0][1], list):  # one vector of operations
            forms = [(forms[0][0], op) for op in forms[0][1]]
        rows = [(line, {str(k): v for k, v in op.items()} if isinstance(op, dict) else op) for line, op in forms]
    return _checked(rows, name), header


def _checked(rows: list[tuple[int, object]], name: str) -> list[dict]:
    """Jepsen's operations, each a map with a type and an f; a Kafka workload's client
    operations; every invocation completed (Jepsen completes each, a crashed one as
    info) - or the error naming the first line that is not."""
    ops, open_at = [], {}
    for i, (line, op) in enumerate(rows):
        if not isinstance(op, dict) or op.get("type") not in TYPES or "f" not in op:
            raise HistoryError(f"{name}, line {line}: not a Jepsen operation (a map with :type invoke, ok,"
                               f" info or fail and an :f): {str(op)[:80]}")
        op.setdefault("index", i)
        process = op.get("process")
        if process != NEMESIS and op["f"] not in CLIENT_FS:
            raise HistoryError(f"{name}, line {line}: not a Kafka workload history: a client operation"
                               f" :f {op['f']} (the Kafka workload's are {', '.join(sorted(CLIENT_FS))})")
        if process != NEMESIS:
            if op["type"] == "invoke":
                open_at[process] = line
            else:
                open_at.pop(process, None)
        ops.append(op)
    if not any(op["f"] in ("send", "poll", "txn") for op in ops):
        raise HistoryError(f"{name}: not a Kafka workload history: no send, poll or txn operation")
    if open_at:
        process, line = min(open_at.items(), key=lambda item: item[1])
        raise HistoryError(f"{name}: the history is truncated: {len(open_at)} invocation(s) never completed"
                           f" (the first on line {line}, process {process}); Jepsen completes every"
                           " operation, a crashed one as :info")
    return ops


def read(path: str) -> tuple[list[dict], dict]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise HistoryError(f"cannot read {path}: {e}") from None
    return parse(text, path)
