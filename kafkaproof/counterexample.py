"""Counterexample files: save a violating run, load one (with clear errors), replay it.

Format 1 (DESIGN.md): kafkaproof version, the setup (broker / producer / consumer
properties, fault kinds, duration), the seed, the fault schedule (the nemesis ops of the
run), the whole history, the violated guarantee with the anomaly and its witness ops,
and the configuration change that fixes it on the same seed, if one was found. A run is
a pure function of (setup, seed), so replaying re-executes it and compares.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from dataclasses import asdict

from kafkaproof import __version__
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.engine import RunResult, Setup, run_one
from kafkaproof.impl.sim.faults import FAULTS
from kafkaproof.properties import GUARANTEES
from kafkaproof.properties.history import CONTROLLER, NEMESIS, History

# 2: eligible.leader.replicas.enable became true by default (Kafka 4.1); a format-1 file
# was made under 3.x's elections and replays with it false unless it says otherwise.
FORMAT = 2

# Changes that remove each anomaly's usual cause, tried one by one on the same seed.
FIXES = {
    "lost-write": [("producer", "acks", "all"), ("broker", "unclean.leader.election.enable", "false"),
                   ("broker", "default.replication.factor", "3"),
                   ("broker", "min.insync.replicas", "2"), ("broker", "eligible.leader.replicas.enable", "true"),
                   ("broker", "log.flush.interval.messages", "1"),
                   ("broker", "legacy.truncate.to.high.watermark", "false")],
    "inconsistent-offsets": [("producer", "acks", "all"), ("broker", "unclean.leader.election.enable", "false"),
                             ("broker", "legacy.truncate.to.high.watermark", "false"),
                             ("broker", "legacy.kip101.without.kip279", "false"),
                             ("broker", "legacy.no.fetch.epoch.fencing", "false")],
    "failed-send": [("producer", "retries", "2147483647")],
    "unavailable": [("broker", "min.insync.replicas", "2")],
    "duplicate": [("producer", "enable.idempotence", "true"), ("producer", "acks", "all")],
    "nonmonotonic-send": [("producer", "enable.idempotence", "true"), ("producer", "acks", "all"),
                          ("producer", "max.in.flight.requests.per.connection", "1")],
    "read-your-writes": [("producer", "acks", "all")],
    "nonmonotonic-poll": [("producer", "acks", "all")],
    "poll-skip": [("producer", "acks", "all")],
    "unseen": [("strategy", None, "after")],
    "redelivered": [],
    "G1a": [("broker", "legacy.transactions.without.kip890", "false")],
    "torn-transaction": [("broker", "legacy.transactions.without.kip890", "false")],
    "lost-transaction": [("broker", "legacy.transactions.without.kip890", "false")],
    "eos-duplicate": [("broker", "legacy.transactions.without.kip890", "false"), ("strategy", None, "transactional")],
    "eos-missing": [("broker", "legacy.transactions.without.kip890", "false")],
}


def fix_text(fix: dict) -> str:
    """A recorded fix in words: "producer acks=all, ... (seed 1 with this change: ...)"."""
    changes = ", ".join(f"commit strategy {c['value']}" if c["scope"] == "strategy" else
                        f"{c['scope']} {c['key']}={c['value']}" for c in fix["changes"])
    return f"{changes or 'none in configuration'} ({fix['verified']})"


class InvalidCounterexample(ValueError):
    """The file cannot be replayed; the message says which field and what was expected."""


def find_fix(setup: Setup, seed: int, guarantee: str, anomaly: str) -> dict | None:
    """The first single change (and then all of them together) under which the same seed
    no longer violates `guarantee`; None if none does."""
    candidates = [(scope, key, value) for scope, key, value in FIXES.get(anomaly, ())
                  if not setup.has(scope, key, value)]
    tries = [[c] for c in candidates] + ([candidates] if len(candidates) > 1 else [])
    for changes in tries:
        fixed = setup
        for scope, key, value in changes:
            fixed = fixed.changed(scope, key, value)
        try:
            still = run_one(fixed, seed).violations.get(guarantee)
        except ConfigError:
            continue  # e.g. idempotence without acks=all: Kafka refuses it too
        if not still:
            return {"changes": [{"scope": s, "key": k, "value": v} for s, k, v in changes],
                    "verified": f"seed {seed} with this change: {guarantee} held"}
    return None


def signature(setup: Setup, guarantee: str, anomaly: str, faults: list[str]) -> str:
    """What makes two counterexamples the same one: the guarantee, the anomaly, the
    settings and the shape of the schedule (its faults and their targets in order,
    without their times)."""
    settings = [f"{scope}.{k}={v}" for scope in ("broker", "producer", "consumer")
                for k, v in sorted(getattr(setup, scope).items())]
    text = "\n".join([guarantee, anomaly, str(setup.strategy), *settings, *faults])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def save(directory: str | pathlib.Path, setup: Setup, result: RunResult, guarantee: str,
         with_fix: bool = True, model_trace: list[dict] | None = None) -> pathlib.Path:
    """Saves the run as `{guarantee}-{settings}-{signature}.json`; a counterexample of the
    same signature already there is kept instead (several runs, workers or hunts
    finding one anomaly the same way save one file)."""
    if result.history is None:
        result = run_one(setup, result.seed, keep_history=True)
    violation = result.violations[guarantee][0]
    ops = [asdict(op) for op in result.history.ops]
    faults = [f"{op['f']}({op['value']})" for op in ops if op["process"] == NEMESIS]
    path = pathlib.Path(directory) / f"{guarantee}-{setup.slug()}-{signature(setup, guarantee, violation['name'], faults)}.json"
    if path.exists():
        return path
    doc = {
        "format": FORMAT, "kafkaproof": __version__,
        "setup": {**asdict(setup), "faults": list(setup.faults), "skip_faults": list(setup.skip_faults)},
        "seed": result.seed,
        "schedule": [{"time": op["time"], "fault": op["f"], "what": op["value"]} for op in ops
                     if op["process"] == NEMESIS],
        "violation": {"guarantee": guarantee, **violation},
        "fix": find_fix(setup, result.seed, guarantee, violation["name"]) if with_fix else None,
        # verify's: the model's steps this run translates (the diagram shows them beside it)
        **({"model_trace": model_trace} if model_trace else {}),
        "history": ops,
    }
    # One op per line: readable with grep and diff, a third the size of indented JSON.
    head = json.dumps({k: v for k, v in doc.items() if k != "history"}, indent=1, sort_keys=True)
    body = ",\n".join(json.dumps(op, sort_keys=True, separators=(",", ":")) for op in ops)
    text = head[:-2] + ',\n "history": [\n' + body + "\n ]\n}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _need(doc: dict, key: str, kind, where: str = "") -> object:
    if key not in doc:
        raise InvalidCounterexample(f"missing field {where}{key!r}")
    value = doc[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise InvalidCounterexample(f"field {where}{key!r} must be {expected}, not {type(value).__name__}")
    return value


def load(path: str | pathlib.Path) -> tuple[Setup, int, dict, History]:
    try:
        text = pathlib.Path(path).read_text()
    except OSError as exc:
        raise InvalidCounterexample(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InvalidCounterexample(f"{path}: not JSON (not even UTF-8 text)") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidCounterexample(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(doc, dict):
        raise InvalidCounterexample(f"{path}: expected a JSON object")
    if _need(doc, "format", int) not in (1, FORMAT):
        raise InvalidCounterexample(f"field 'format' is {doc['format']}; this kafkaproof reads formats 1 and {FORMAT}")
    s = _need(doc, "setup", dict)
    if doc["format"] == 1 and isinstance(s.get("broker"), dict):
        s["broker"] = {"eligible.leader.replicas.enable": "false", **s["broker"]}
    for scope in ("broker", "producer", "consumer"):
        entries = _need(s, scope, dict, "setup.")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in entries.items()):
            raise InvalidCounterexample(f"field 'setup.{scope}' must map keys to string values")
    faults = _need(s, "faults", list, "setup.")
    kinds = tuple(FAULTS)
    if not faults or any(f not in kinds for f in faults):
        raise InvalidCounterexample(f"field 'setup.faults' must list fault kinds among {', '.join(kinds)}")
    strategy = s.get("strategy")
    if strategy is not None and not isinstance(strategy, str):
        raise InvalidCounterexample("field 'setup.strategy' must be a commit strategy name or null")
    seconds = _need(s, "seconds", int, "setup.")
    seed = _need(doc, "seed", int)
    v = _need(doc, "violation", dict)
    if _need(v, "guarantee", str, "violation.") not in GUARANTEES:
        raise InvalidCounterexample(f"field 'violation.guarantee' must be one of {', '.join(GUARANTEES)}")
    _need(v, "name", str, "violation.")
    _need(v, "witness", list, "violation.")
    ops = _need(doc, "history", list)
    try:
        history = History.from_jsonl("\n".join(json.dumps(op) for op in ops))
    except TypeError as exc:
        raise InvalidCounterexample(f"field 'history' holds an op that is not one: {exc}") from None
    skip = s.get("skip_faults", [])
    max_sends = s.get("max_sends")
    if not isinstance(skip, list) or not all(isinstance(i, int) for i in skip):
        raise InvalidCounterexample("field 'setup.skip_faults' must be a list of integers")
    if max_sends is not None and (not isinstance(max_sends, int) or max_sends < 0):
        raise InvalidCounterexample("field 'setup.max_sends' must be a non-negative integer or null")
    schedule = s.get("schedule", [])
    if not isinstance(schedule, list) or not all(
            isinstance(e, list) and len(e) in (3, 4) and isinstance(e[0], int) and isinstance(e[1], str)
            and isinstance(e[2], int) and (len(e) == 3 or isinstance(e[3], (int, float, str))) for e in schedule):
        raise InvalidCounterexample("field 'setup.schedule' must be a list of [at ms, kind, replica(, value)]")
    final_read = s.get("final_read", False)  # (files saved before the field: False)
    if not isinstance(final_read, bool):
        raise InvalidCounterexample("field 'setup.final_read' must be true or false")
    setup = Setup(s["broker"], s["producer"], s["consumer"], tuple(faults), seconds, tuple(skip), max_sends,
                  strategy, tuple(tuple(e) for e in schedule), final_read)
    return setup, seed, {**v, "fix": doc.get("fix"), "model_trace": doc.get("model_trace")}, history


def replay(path: str | pathlib.Path, hw_moves: list | None = None, recorder=None,
           runs: dict | None = None, loaded: tuple | None = None) -> tuple[bool, str, History, dict]:
    """Re-execute; (reproduced exactly?, what differs if not, the new history, the violation).
    `hw_moves`, if given, receives every high-watermark move of a partition leader (they
    are not in the history: recording them would change every saved file); `recorder`
    (kafkaproof.diagram.Recorder) the messages and replica states of the space-time diagram.
    `runs`: (setup, seed) -> (result, recorder) of runs replayed before, kept and reused (a
    report's counterexamples of several guarantees often come from one run). `loaded`: what
    load(path) gave, when the caller has read the file already."""
    setup, seed, recorded, old_history = loaded or load(path)
    key = (repr(setup), seed)
    if runs is not None and key in runs and hw_moves is None:
        result = runs[key][0]  # (its recorder is runs[key][1])
    else:
        watches = ([watch_hw(hw_moves)] if hw_moves is not None else []) + ([recorder] if recorder is not None else [])
        result = run_one(setup, seed, keep_history=True, watch=lambda c: [w(c) for w in watches])
        if runs is not None:
            runs[key] = (result, recorder)
    found = result.violations.get(recorded["guarantee"], [])
    same = [v for v in found if v["name"] == recorded["name"] and v["witness"] == recorded["witness"]]
    if same and result.history.to_jsonl() == old_history.to_jsonl():
        return True, "", result.history, recorded
    if same:
        return False, "the same violation, but the history differs from the recorded one", result.history, recorded
    if found:
        return False, (f"{recorded['guarantee']} is still violated, but as {found[0]['name']}: {found[0]['detail']}"
                       f" (recorded: {recorded['name']}: {recorded.get('detail', '')})"), result.history, recorded
    return False, f"{recorded['guarantee']} held in the re-execution", result.history, recorded


def watch_hw(moves: list):
    """An observer for run_one's `watch`: appends (time, broker node, topic, partition, old,
    new, old leader's node) whenever a partition leader's high watermark moves (internal
    topics left out)."""
    def attach(c) -> None:
        last: dict = {}

        def observe(node: str) -> None:
            if not node.startswith("broker-") or node in c.down:
                return
            for tp, p in c.procs[node].partitions.items():
                if not p.is_leader or tp.topic.startswith("__"):
                    continue
                seen = last.get(tp)
                if seen != (node, p.hw):
                    if seen is not None:
                        moves.append((c.now, node, tp.topic, tp.partition, seen[1], p.hw, seen[0]))
                    last[tp] = (node, p.hw)

        c.observers.append(observe)

    return attach


def timeline(history: History, witness: list[int], context: int = 6,
             hw_moves: list = ()) -> list[tuple[int, str, str, bool]]:
    """(time, lane, event, is witness): every fault, the witness ops and the ops around them,
    and the witness partitions' high-watermark moves among them (every move back: a new
    leader that had less)."""
    keep = set(witness)
    for i in witness:
        keep.update(range(max(0, i - context), min(len(history.ops), i + context + 1)))
    # Transaction markers delivered while a witness transaction was open (a late one is the
    # whole story of a pre-KIP-890 anomaly).
    spans = []
    for i in witness:
        done = history.ops[i]
        if done.f == "txn":
            began = next((op.time for op in reversed(history.ops[:i]) if op.f == "txn" and op.type == "invoke"
                          and op.process == done.process and op.value == done.value), done.time)
            spans.append((began, done.time + 500))
    rows = []
    for op in history.ops:
        marker = op.f == "txn-marker" and any(a <= op.time <= b for a, b in spans)
        if op.index not in keep and op.process not in (NEMESIS, CONTROLLER) and not marker:
            continue
        if op.process == NEMESIS:
            event = f"{op.f} {op.value or ''}".strip()
        elif op.process == CONTROLLER:
            event = f"{op.topic}-{op.partition}: {op.value}"
        elif op.f == "send":
            where = f" -> {op.topic}-{op.partition}@{op.offset}" if op.partition is not None else ""
            event = f"send {op.value!r} {op.type}{where}{' ' + op.error if op.error else ''}"
        elif op.f == "poll":
            got = ", ".join(f"{t}-{p}@{o}={v!r}" for t, p, o, _, v in op.records[:4])
            more = f" (+{len(op.records) - 4})" if len(op.records) > 4 else ""
            event = f"poll {op.type} {got}{more}"
        elif op.f == "txn-marker":
            event = f"{op.value} marker arrives for {op.topic}-{op.partition}"
        else:
            event = f"{op.f} {op.type} {op.value or ''}".strip()
        rows.append((op.time, op.process, event, op.index in witness))
    parts = {(history.ops[i].topic, history.ops[i].partition) for i in witness if history.ops[i].partition is not None}
    windows = [(history.ops[min(keep)].time, history.ops[max(keep)].time)] if keep else []
    for t, node, topic, partition, old, new, was in hw_moves:
        if (topic, partition) in parts and (new < old or any(a <= t <= b for a, b in windows)):
            leader = "" if was == node else f" (new leader; {was} had {old})"
            rows.append((t, node, f"{topic}-{partition}: HW {old} -> {new}{leader}", False))
    return sorted(rows, key=lambda r: r[0])
