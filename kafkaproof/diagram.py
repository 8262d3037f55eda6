"""Space-time diagrams of a run (ShiViz's lanes and arrows, Jepsen's timeline, the TLA+
trace explorer's state at each step), as a Vega-Lite spec rendered into one
self-contained HTML file (vl-convert inlines Vega, Vega-Lite and vega-embed: no network
needed to open it) or a PNG/SVG preview (vl-convert renders without a browser).

A lane per process (nemesis, controller, brokers, client applications); messages as
arrows from sender to receiver; faults as shaded intervals; each replica's log end
offset and high watermark of the witness partition as step lines; the witness
operations highlighted; the time window that matters selected at open (drag the strip
at the bottom to move it); the replicas' state at the step under the pointer; and, for
a counterexample verify produced, the model's trace beside it, step for step.

Recorder collects what the history does not hold (messages, replica states) through
the cluster's watchers while the run replays; they only read, so the run is the same.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import re
from collections.abc import Iterable
from html import escape

from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.sim import faults as fault_kinds
from kafkaproof.properties.history import CONTROLLER, INVOKE, NEMESIS, History, Op

# Message kinds, by class name prefix: the arrows' colours.
KINDS = {
    "produce": ("Produce",),
    "replication": ("Fetch", "OffsetsForLeaderEpoch"),
    "control": ("LeaderAndIsr", "AlterPartition", "StopReplica", "UpdateMetadata", "ElectLeaders",
                "ReassignPartition", "CreateTopic", "CreatePartitions"),
    "transaction": ("WriteTxnMarkers", "EndTxn", "AddPartitionsToTxn", "AddOffsetsToTxn", "InitProducerId",
                    "TxnOffsetCommit"),
    "group": ("JoinGroup", "SyncGroup", "Heartbeat", "LeaveGroup", "OffsetCommit", "OffsetFetch"),
    "connection": ("Disconnected",),
}
# Sent every few hundred ms by every broker and client, and never the story: left out.
UNSHOWN = ("BrokerHeartbeat", "Metadata", "FindCoordinator", "ListOffsets", "DescribeLogDirs")
KIND_COLOURS = {"produce": "#2e86c1", "replication": "#95a5a6", "consumer fetch": "#27ae60", "control": "#8e44ad",
                "transaction": "#d35400", "group": "#16a085", "connection": "#7f8c8d", "other": "#bdc3c7"}
WITNESS_COLOUR = "#c0392b"
MARGIN_MS = 1000  # around the window that matters
NEAR_MS = 5000  # a fault this long before the witness belongs to its story
THIN_MS = 250  # outside it: one state row per replica per this many ms (changes of role, epoch, ISR kept)
DETAIL_CHARS = 120
# Fields every request of a kind carries alike: left out of the tooltips (with those at their defaults).
NOISE = frozenset({"max_bytes", "max_wait_ms", "min_bytes", "timeout_ms", "replica_epoch", "zero_copy"})


def lane_of(node: str, process_of: dict[str, str]) -> str:
    if node.startswith("controller-"):
        return CONTROLLER
    return process_of.get(node, node)


def kind_of(message: object) -> str:
    name = type(message).__name__
    if name.startswith("Fetch") and getattr(message, "replica_id", 0) < 0:
        return "consumer fetch"
    for kind, prefixes in KINDS.items():
        if name.startswith(prefixes):
            return kind
    return "other"


def describe(message: object) -> str:
    """A message's fields, bytes as their length: what the arrow's tooltip says."""
    if not dataclasses.is_dataclass(message):
        return type(message).__name__
    parts = []
    for f in dataclasses.fields(message):
        v = getattr(message, f.name)
        if f.name in NOISE or (f.default is not dataclasses.MISSING and v == f.default):
            continue
        if isinstance(v, bytes | bytearray | memoryview):
            v = f"{len(v)} bytes"
        elif isinstance(v, m.TopicPartition):
            v = f"{v.topic}-{v.partition}"
        elif hasattr(v, "name") and hasattr(v, "value") and not isinstance(v, str):
            v = v.name  # an ErrorCode
        elif isinstance(v, tuple) and v and dataclasses.is_dataclass(v[0]):
            v = "; ".join(_state_text(s) for s in v)
        parts.append(f"{f.name}={v}")
    return f"{type(message).__name__}({', '.join(parts)})"[:DETAIL_CHARS]


def _state_text(s: object) -> str:
    if isinstance(s, m.PartitionState):
        return f"{s.tp.topic}-{s.tp.partition} leader {s.leader} epoch {s.leader_epoch} isr {list(s.isr)}"
    return type(s).__name__


class Recorder:
    """A run_one `watch`: every message sent and every change of a user partition's
    replica (role, epoch, ISR, log end, HW, the epochs its log holds), with the time."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.states: list[dict] = []
        self.process_of: dict[str, str] = {}
        self.c = None

    def __call__(self, c) -> None:
        self.c = c
        self.process_of = c.process_of  # (filled as clients appear)
        c.message_watchers.append(self._sent)
        c.partition_watchers.append(self._changed)

    def _sent(self, src: str, dst: str, message: object, now: int, arrivals: list[int], refused: bool) -> None:
        name = type(message).__name__
        if name.startswith(UNSHOWN):
            return
        kind = kind_of(message)
        tp = getattr(message, "tp", None)
        if kind == "replication" and tp is not None and tp.topic.startswith("__"):
            return  # the internal topics' replication: fifty partitions' worth, never the story
        text = describe(message)
        row = {"s": src, "d": dst, "t": now, "a": arrivals[0] if arrivals else None, "k": kind, "x": text}
        if not arrivals or refused:  # (only when true: the picture's data stays small)
            row["lost" if not arrivals else "refused"] = True
        self.messages.append(row)
        for late in arrivals[1:]:  # the network's duplicate, arriving out of order: often the story
            self.messages.append({"s": src, "d": dst, "t": now, "a": late, "k": kind, "x": f"DUPLICATE {text}",
                                  "dup": True})

    def _changed(self, node: str, partitions: list) -> None:
        if node in self.c.down:
            return
        for p in partitions:
            if p.tp.topic.startswith("__"):
                continue
            self.states.append({
                "t": self.c.now, "b": node, "tp": f"{p.tp.topic}-{p.tp.partition}",
                "r": "leader" if p.is_leader else "follower", "e": p.leader_epoch, "isr": ",".join(map(str, p.isr)),
                "leo": p.log.log_end_offset, "hw": p.hw,
                "log": " ".join(f"e{e}@{o}" for e, o in p.log.epochs.entries) or "empty",
            })


# -- what the picture shows ------------------------------------------------------------------


def window(history: History, witness: list[int]) -> tuple[int, int]:
    """The time that matters: from the first witness operation's invocation to the last
    one's completion, with the fault that struck just before (within NEAR_MS) and the
    faults during it, and a margin."""
    end = history.ops[-1].time if history.ops else 0
    if not witness:
        return 0, end
    lo = min(_invoked(history, history.ops[i]) for i in witness)
    hi = max(history.ops[i].time for i in witness)
    faults = history.faults()
    before = [op.time for op in faults if lo - NEAR_MS <= op.time <= lo]
    # A write lost later: the fault after it and the controller's next decision.
    after = [op.time for op in faults if hi < op.time <= hi + 2 * NEAR_MS][:1]
    after += [op.time for op in history.ops if op.process == CONTROLLER and after and after[0] <= op.time][:1]
    return max(0, min([lo] + before[-1:]) - MARGIN_MS), min(end, max([hi] + after) + MARGIN_MS)


def _invoked(history: History, done: Op) -> int:
    """When the operation that `done` completes began (a transaction: its begin)."""
    for op in reversed(history.ops[:done.index]):
        if op.process == done.process and op.f == done.f and op.type == INVOKE:
            return op.time
    return done.time


def op_text(op: Op) -> str:
    if op.process == NEMESIS:
        return f"{op.f} {op.value or ''}".strip()
    if op.process == CONTROLLER:
        return f"{op.topic}-{op.partition}: {op.value}"
    where = f" {op.topic}-{op.partition}@{op.offset}" if op.partition is not None and op.offset is not None else ""
    if op.f == "poll" or op.records:
        got = ", ".join(f"{t}-{p}@{o}={v}" for t, p, o, _, v in op.records[:6])
        more = f" (+{len(op.records) - 6})" if len(op.records) > 6 else ""
        return f"{op.f} {op.type} {got}{more}".strip()
    value = f" {op.value}" if op.value else ""
    return f"{op.f} {op.type}{value}{where}{' ' + op.error if op.error else ''}"


def spec(history: History, recorder: Recorder, witness: list[int], title: str, subtitle: Iterable[str] = (),
         model_trace: list[dict] | None = None) -> dict:
    """The Vega-Lite spec of the diagram (data inline)."""
    subtitle = list(subtitle)
    # The witness, and the operations writing or reading the values its detail names (a
    # torn transaction's missing write; unseen's never-processed record, which has no witness).
    witness = sorted(set(witness) | set(named_in(history, title + " " + " ".join(subtitle))))
    lo, hi = window(history, witness)
    end = max(history.ops[-1].time if history.ops else 0, hi)
    lane = lambda node: lane_of(node, recorder.process_of)  # noqa: E731
    witness_set = set(witness)
    focus = _witness_partition(history, witness)

    ops = [{"t": op.time, "lane": op.process, "x": op_text(op), "w": op.index in witness_set, "i": op.index,
            "type": op.type} for op in history.ops
           if op.type != INVOKE and op.process != NEMESIS and (lo <= op.time <= hi or op.index in witness_set
                                                                 or op.process == CONTROLLER)]
    for n, o in enumerate(o for o in ops if o["w"]):
        o["tag"] = f"w{n + 1}"  # on the chart; the list below it says what each is
    # Outside the window only what is not replication's steady traffic (the data stays small).
    arrows = [dict(msg, s=lane(msg["s"]), d=lane(msg["d"]), a=msg["a"] if msg["a"] is not None else msg["t"] + 5)
              for msg in recorder.messages if lo <= msg["t"] <= hi or msg["k"] != "replication"]
    arrows = [a for a in arrows if a["s"] != a["d"]]
    # What concerns the witness stands out: messages to or from its processes, or about its partition.
    actors = {history.ops[i].process for i in witness}
    for a in arrows:
        if (a["s"] in actors or a["d"] in actors or f"tp={focus}," in a["x"] or f"tp={focus})" in a["x"]
                or a.get("dup")):
            a["rel"] = True
        else:
            a["x"] = a["x"].split("(", 1)[0]  # the rest is faint: its name is enough
    faults = fault_kinds.intervals(history.faults(), end)
    states = _thin([s for s in recorder.states if s["tp"] == focus], lo, hi)
    steps = _steps(states, lo, hi)
    lanes = _lane_order({a["s"] for a in arrows} | {a["d"] for a in arrows} | {o["lane"] for o in ops}
                        | {f["lane"] for f in faults if f["lane"] != "network"} | {s["b"] for s in states})
    brokers = [x for x in lanes if x.startswith("broker-")]
    for f in faults:
        f["lanes"] = brokers if f["lane"] == "network" else [f["lane"]]
    faults = [dict(f, lane=one) for f in faults for one in f.pop("lanes")]

    x_detail = {"field": "t", "type": "quantitative", "title": "simulated time (ms)",
                "scale": {"domain": {"param": "brush", "encoding": "x"}}}
    y_lane = {"field": "lane", "type": "nominal", "sort": lanes, "title": None,
              "axis": {"labelFontSize": 12, "grid": True}}
    lane_scale = {"type": "nominal", "sort": lanes, "title": None, "scale": {"domain": lanes}}
    kinds = sorted({a["k"] for a in arrows})
    colour = {"field": "k", "type": "nominal", "title": "message",
              "scale": {"domain": kinds, "range": [KIND_COLOURS[k] for k in kinds]}}
    main = {
        "width": 1100, "height": max(160, 34 * len(lanes)),
        "layer": [
            # (bands as thick rules: the lanes are a point scale, shared with the arrows)
            {"name": "faults", "data": {"values": faults}, "mark": {"type": "rule", "opacity": 0.3, "strokeWidth": 22,
                                                                    "color": "#e67e22", "clip": True},
             "encoding": {"x": x_detail, "x2": {"field": "t2"}, "y": dict(y_lane), "tooltip": [
                 {"field": "x", "title": "fault"}, {"field": "t", "title": "from ms"},
                 {"field": "t2", "title": "to ms"}]}},
            {"name": "arrows", "data": {"name": "arrows"},
             "mark": {"type": "rule", "strokeWidth": 1.2, "clip": True},
             "encoding": {"x": x_detail, "x2": {"field": "a"},
                          "y": {"field": "s", **lane_scale}, "y2": {"field": "d"},
                          "color": colour,
                          "strokeDash": {"condition": {"test": "datum.lost || datum.dup || datum.refused", "value": [4, 3]},
                                         "value": [1, 0]},
                          "opacity": {"condition": {"test": "datum.rel", "value": 0.95}, "value": 0.15},
                          "strokeWidth": {"condition": [{"test": "datum.dup", "value": 3},
                                                        {"test": "datum.rel", "value": 1.6}], "value": 0.8},
                          "tooltip": [{"field": "x", "title": "message"}, {"field": "s", "title": "from"},
                                      {"field": "d", "title": "to"}, {"field": "t", "title": "sent ms"},
                                      {"field": "a", "title": "arrives ms"}]}},
            {"name": "heads", "data": {"name": "arrows"},
             "transform": [{"calculate": "indexof(" + json.dumps(lanes) + ", datum.d) > indexof("
                            + json.dumps(lanes) + ", datum.s) ? 'triangle-down' : 'triangle-up'", "as": "shape"}],
             "mark": {"type": "point", "filled": True, "size": 30, "clip": True},
             "encoding": {"x": {"field": "a", "type": "quantitative"}, "y": {"field": "d", **lane_scale},
                          "shape": {"field": "shape", "type": "nominal", "scale": None},
                          "color": colour, "opacity": {"condition": {"test": "datum.lost || !datum.rel", "value": 0},
                                                       "value": 1}}},
            {"name": "ops", "data": {"values": [o for o in ops if not o["w"]]},
             "mark": {"type": "point", "filled": True, "size": 40, "clip": True},
             "encoding": {"x": x_detail, "y": dict(y_lane),
                          "color": {"value": "#34495e"},
                          "tooltip": [{"field": "x", "title": "operation"}, {"field": "t", "title": "ms"},
                                      {"field": "i", "title": "history index"}]}},
            {"name": "witness", "data": {"values": [o for o in ops if o["w"]]},
             "mark": {"type": "point", "filled": True, "size": 260, "shape": "diamond", "clip": True,
                      "stroke": "black", "strokeWidth": 1},
             "encoding": {"x": x_detail, "y": dict(y_lane), "color": {"value": WITNESS_COLOUR},
                          "tooltip": [{"field": "x", "title": "witness"}, {"field": "t", "title": "ms"},
                                      {"field": "i", "title": "history index"}]}},
            {"name": "witness_labels", "data": {"values": [o for o in ops if o["w"]]},
             "mark": {"type": "text", "align": "left", "dx": 8, "dy": -11, "fontSize": 12, "clip": True,
                      "color": WITNESS_COLOUR, "fontWeight": "bold"},
             "encoding": {"x": x_detail, "y": dict(y_lane), "text": {"field": "tag"}}},
            {"name": "steps", "data": {"name": "steps"},
             "mark": {"type": "point", "opacity": 0, "size": 400},
             "params": [{"name": "cursor", "value": [{"step": _first_witness_step(steps, history, witness)}],
                         "select": {"type": "point", "on": "pointermove", "nearest": True, "fields": ["step"],
                                    "clear": False}}],
             "encoding": {"x": x_detail, "y": {"field": "b", **lane_scale}}},
            {"name": "cursor_rule", "data": {"name": "steps"},
             "transform": [{"filter": {"param": "cursor"}}, {"filter": {"field": "b", "equal": steps[0]["b"]}}
                           ] if steps else [],
             "mark": {"type": "rule", "color": "#555", "strokeDash": [2, 2], "clip": True},
             "encoding": {"x": x_detail}},
        ],
    }
    offsets = {
        "name": "offsets", "width": 1100, "height": 170, "title": f"{focus}: log end offset (solid) and high watermark (dashed) per replica",
        "data": {"values": states},
        "transform": [{"fold": ["leo", "hw"], "as": ["measure", "offset"]}],
        "mark": {"type": "line", "interpolate": "step-after", "clip": True, "point": False},
        "encoding": {"x": x_detail, "y": {"field": "offset", "type": "quantitative", "title": "offset",
                                          "scale": {"zero": False}},
                     "color": {"field": "b", "type": "nominal", "title": "replica"},
                     "strokeDash": {"field": "measure", "type": "nominal", "title": None,
                                    "scale": {"domain": ["leo", "hw"], "range": [[1, 0], [5, 3]]}},
                     "detail": {"field": "b"},
                     "tooltip": [{"field": "b"}, {"field": "measure"}, {"field": "offset", "type": "quantitative"},
                                 {"field": "t", "title": "ms"}]},
    }
    panel = {
        "name": "state", "width": 1100, "height": 22 * max(1, len(brokers)) + 10,
        "title": f"{focus} at the step under the pointer",
        "data": {"name": "steps"},
        "transform": [{"filter": {"param": "cursor", "empty": False}},
                      {"calculate": "datum.b + ' @' + datum.t + ' ms: ' + datum.r + ', epoch ' + datum.e + ', ISR ['"
                       " + datum.isr + '], LEO ' + datum.leo + ', HW ' + datum.hw + ', log ' + datum.log",
                       "as": "line"}],
        "mark": {"type": "text", "align": "left", "x": 0, "fontSize": 12, "font": "monospace"},
        "encoding": {"y": {"field": "b", "type": "nominal", "title": None, "axis": None}, "text": {"field": "line"}},
    }
    overview = {
        "name": "overview", "width": 1100, "height": 40, "title": "the whole run: drag to move or resize the window shown above",
        "data": {"values": [{"t": op.time, "lane": op.process, "nemesis": op.process == NEMESIS}
                            for op in history.ops if op.type != INVOKE]},
        "mark": {"type": "tick", "thickness": 1},
        "params": [{"name": "brush", "value": {"x": [lo, hi]}, "select": {"type": "interval", "encodings": ["x"]}}],
        "encoding": {"x": {"field": "t", "type": "quantitative", "title": None, "scale": {"domain": [0, end]}},
                     "color": {"condition": {"test": "datum.nemesis", "value": "#e67e22"}, "value": "#95a5a6"}},
    }
    told = [o for o in ops if o["w"]]
    witnesses = {
        "name": "witness_list", "width": 1100, "height": 18 * max(1, len(told)) + 4, "title": "the witness operations",
        "data": {"values": [dict(o, line=f"{o['tag']}  {o['t']} ms  {o['lane']}: {o['x']}") for o in told]},
        "mark": {"type": "text", "align": "left", "x": 0, "fontSize": 12, "font": "monospace",
                 "color": WITNESS_COLOUR, "limit": 1100},
        "encoding": {"y": {"field": "tag", "type": "ordinal", "axis": None, "sort": [o["tag"] for o in told]},
                     "text": {"field": "line"}},
    }
    charts = [main, witnesses, offsets, panel, overview] if told else [main, offsets, panel, overview]
    body: dict = {"vconcat": charts, "spacing": 18,
                  "resolve": {"scale": {"color": "independent", "strokeDash": "independent"}}}
    if model_trace:
        body = {"hconcat": [body, _model_panel(model_trace, history)], "spacing": 24}
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "title": {"text": title, "subtitle": subtitle, "anchor": "start", "fontSize": 15},
        "config": {"view": {"stroke": None}, "legend": {"orient": "right"}},
        "datasets": {"arrows": arrows, "steps": steps},
        **body,
    }


def _model_panel(trace: list[dict], history: History) -> dict:
    """The model's steps beside the run: each step the schedule translated into a fault,
    with the time that fault struck in the run (matched by kind, in order)."""
    injected = [op for op in history.faults()]
    used, rows = 0, []
    for i, step in enumerate(trace):
        at = ""
        if step.get("fault"):
            match = next((n for n in range(used, len(injected)) if injected[n].f == step["fault"]), None)
            if match is not None:
                at, used = f"  = run {injected[match].time} ms: {injected[match].f} {injected[match].value}", match + 1
        target = f" {step['target']}" if step.get("target") not in (None, "") else ""
        rows.append({"i": i, "line": f"{i:>2} {step['action']}{target}{at}", "state": step.get("state", "")})
    return {"name": "model", "width": 460, "height": 18 * len(rows) + 10,
            "title": "the model's trace (verify), step for step",
            "data": {"values": rows}, "mark": {"type": "text", "align": "left", "x": 0, "font": "monospace",
                                               "limit": 460},
            "encoding": {"y": {"field": "i", "type": "ordinal", "axis": None}, "text": {"field": "line"},
                         "tooltip": [{"field": "line", "title": "step"}, {"field": "state", "title": "state after"}]}}


def named_in(history: History, text: str) -> list[int]:
    """A violation without witness operations (unseen: what never happened has none) names
    its values in its detail ('1-409'): the operations that wrote or read them."""
    values = set(re.findall(r"'([^']+)'", text))
    return [op.index for op in history.ops if op.type != INVOKE and op.process not in (NEMESIS, CONTROLLER)
            and (op.value in values or any(r[4] in values for r in op.records))]


def _witness_partition(history: History, witness: list[int]) -> str:
    for i in witness:
        op = history.ops[i]
        if op.partition is not None and op.topic is not None:
            return f"{op.topic}-{op.partition}"
        if op.records:
            t, p, *_ = op.records[0]
            return f"{t}-{p}"
    first = next((op for op in history.ops if op.partition is not None and not (op.topic or "_").startswith("__")),
                 None)
    return f"{first.topic}-{first.partition}" if first is not None else ""


def _thin(states: list[dict], lo: int, hi: int) -> list[dict]:
    """Every row inside the window; outside it one per replica per THIN_MS, except rows
    that change the role, epoch, ISR or log epochs, or move an offset back."""
    out, last = [], {}
    for s in states:
        prev = last.get(s["b"])
        keep = (lo <= s["t"] <= hi or prev is None or s["t"] - prev["t"] >= THIN_MS
                or (s["r"], s["e"], s["isr"], s["log"]) != (prev["r"], prev["e"], prev["isr"], prev["log"])
                or s["leo"] < prev["leo"] or s["hw"] < prev["hw"])
        if keep:
            out.append(s)
            last[s["b"]] = s
    return out


def _steps(states: list[dict], lo: int, hi: int) -> list[dict]:
    """Inside the window, every replica's state at each time one of them changed."""
    current: dict[str, dict] = {}
    out, step = [], 0
    for n, s in enumerate(states):
        current[s["b"]] = s
        if lo <= s["t"] <= hi and (n + 1 == len(states) or states[n + 1]["t"] != s["t"]):
            out += [dict(r, t=s["t"], step=step, since=r["t"]) for r in current.values()]
            step += 1
    return out


def _first_witness_step(steps: list[dict], history: History, witness: list[int]) -> int:
    if not steps:
        return 0
    t = min((history.ops[i].time for i in witness), default=steps[0]["t"])
    return max((s["step"] for s in steps if s["t"] <= t), default=0)


def _lane_order(lanes: set[str]) -> list[str]:
    def key(x: str) -> tuple:
        rank = 0 if x == NEMESIS else 1 if x == CONTROLLER else 2 if x.startswith("broker-") else 3
        return rank, x
    return sorted(lanes, key=key)


# -- rendering -----------------------------------------------------------------------------------


def html(vl_spec: dict, title: str, bundle: str | None = None) -> str:
    """One self-contained file: Vega, Vega-Lite and vega-embed inlined (or, with `bundle`,
    loaded from that address: a gallery's pages share one copy), the spec gzipped (its
    data is a tenth of the size; the browser's DecompressionStream opens it), rendered
    as SVG so the browser's DOM holds the marks by name. When drawn, the body gets
    data-ready (or data-error), for whatever waits on it."""
    import vl_convert as vlc

    inline = "" if bundle else vlc.javascript_bundle().replace("</script", "<\\/script")
    script = f'<script src="{escape(bundle)}"></script>' if bundle else f"<script>{inline}</script>"
    packed = base64.b64encode(gzip.compress(json.dumps(vl_spec, separators=(",", ":")).encode(), mtime=0)).decode()
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{escape(title)}</title>{script}
<style>body{{font-family:sans-serif;margin:12px}} #vis{{width:100%}}</style></head>
<body><div id="vis">drawing...</div>
<script>
(async () => {{
  try {{
    const bytes = Uint8Array.from(atob("{packed}"), c => c.charCodeAt(0));
    const text = await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"))).text();
    const result = await vegaEmbed("#vis", JSON.parse(text), {{renderer: "svg", actions: {{export: true, source: false,
      compiled: false, editor: false}}}});
    window.view = result.view;
    document.body.dataset.ready = "1";
  }} catch (e) {{
    document.body.dataset.error = String(e);
    console.error(e);
  }}
}})();
</script></body></html>
"""


def png(vl_spec: dict, scale: float = 1.0) -> bytes:
    """A preview, reduced to the diagram's palette: a tenth of the bytes (the gallery
    keeps one per counterexample in git)."""
    import vl_convert as vlc

    return small_png(vlc.vegalite_to_png(vl_spec, scale=scale))


def small_png(data: bytes) -> bytes:
    """A PNG of a diagram (or a screenshot of one) on the diagram's palette."""
    import io

    from PIL import Image

    full = Image.open(io.BytesIO(data)).convert("RGB")
    out = io.BytesIO()
    full.quantize(palette=_palette(), dither=Image.Dither.NONE).save(out, "PNG", optimize=True)
    return out.getvalue()


def _palette():
    """The diagram's own colours, each also faded towards white (opacity, anti-aliasing),
    and greys: a palette fitted to the data loses rare colours (the one witness, a
    transaction marker), this one keeps every colour the legend names."""
    from PIL import Image

    bases = [*KIND_COLOURS.values(), WITNESS_COLOUR, "#e67e22", "#34495e", "#4c78a8", "#f58518", "#e45756",
             "#72b7b2", "#54a24b"]  # (the last five: Vega's first colours, the replicas' lines)
    colours = [(v, v, v) for v in range(0, 256, 8)] + [(255, 255, 255)]
    for base in bases:
        rgb = tuple(int(base[i:i + 2], 16) for i in (1, 3, 5))
        colours += [tuple(round(c * a + 255 * (1 - a)) for c in rgb) for a in (1, 0.8, 0.6, 0.4, 0.25, 0.12)]
    flat = [c for rgb in colours[:256] for c in rgb]
    image = Image.new("P", (1, 1))
    image.putpalette(flat + flat[:3] * (256 - len(flat) // 3))
    return image


def svg(vl_spec: dict) -> str:
    import vl_convert as vlc

    return vlc.vegalite_to_svg(vl_spec)


def draw(path, hw_moves: list | None = None, runs: dict | None = None) -> tuple[dict, bool, str, History, dict]:
    """Replay a counterexample file with a Recorder: (the diagram's spec, reproduced?, why
    not, the replayed history, the recorded violation). `hw_moves` and `runs` as replay's."""
    from kafkaproof.counterexample import fix_text, load, replay

    loaded = load(path)
    setup, seed = loaded[:2]
    recorder = Recorder()
    reproduced, why, history, violation = replay(path, hw_moves, recorder=recorder, runs=runs, loaded=loaded)
    if runs is not None:
        recorder = runs[(repr(setup), seed)][1]  # (the one that recorded it, if it was replayed before)
    fix = violation.get("fix")
    subtitle = [violation.get("detail", ""),
                f"seed {seed}; {setup.slug()}; failure model: {setup.failure_model.describe()}",
                "reproduced on replay" if reproduced else f"NOT reproduced on replay: {why}"]
    if fix:
        subtitle.append(f"fix: {fix_text(fix)}")
    title = f"{violation['guarantee']}: {violation['name']}"
    vl_spec = spec(history, recorder, violation["witness"], title, subtitle, violation.get("model_trace"))
    return vl_spec, reproduced, why, history, violation


BUNDLE = "vega-bundle.js"


def gallery(files: Iterable, out) -> list[tuple[str, bool]]:
    """Each counterexample file replayed and drawn into `out` as NAME.html (sharing one
    copy of the Vega bundle, BUNDLE) and NAME.png, NAME the file's name up to "--":
    [(name, reproduced)]."""
    import pathlib

    import vl_convert as vlc

    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / BUNDLE).write_text(vlc.javascript_bundle())
    done, runs = [], {}
    for path in sorted(pathlib.Path(f) for f in files):
        name = path.name.split("--")[0]
        vl_spec, reproduced, *_ = draw(path, runs=runs)
        (out / f"{name}.html").write_text(html(vl_spec, name, bundle=BUNDLE))
        (out / f"{name}.png").write_bytes(png(vl_spec))
        done.append((name, reproduced))
    return done
