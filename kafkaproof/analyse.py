"""`kafkaproof analyse FILE`: Jepsen's Kafka analysis of a history alone - a history.edn
Jepsen recorded, kafkaproof's JSON-lines form, or a counterexample file (its simulator
history read as Jepsen's, the saved oracle verdict shown beside it as extra evidence).

Exit codes: 0 valid, 1 an anomaly Kafka's design forbids, 2 an input error, 3 UNKNOWN
(no acknowledged send or poll: nothing was tested)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

UNKNOWN_EXIT = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="history.edn (Jepsen), a .jsonl history, or a counterexample .json")
    p.add_argument("--ww-deps", action="store_true",
                   help="infer write-write dependencies from offsets (Jepsen's --ww-deps): G0 and G1c through them")
    p.add_argument("--final-read", choices=("yes", "no"),
                   help="whether the history ends with Jepsen's final read (unseen is judged only then);"
                        " default: what the file says, else yes as Jepsen assumes")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.add_argument("--edn", metavar="OUT", help="also write the history as Jepsen's history.edn")
    p.add_argument("--jsonl", metavar="OUT", help="also write the history in kafkaproof's JSON-lines form")


def load(path: str) -> tuple[list[dict], dict, dict | None]:
    """The history's operations, its header, and for a counterexample file the oracle's
    violation. A HistoryError says what is wrong."""
    from kafkaproof.properties.jepsen_history import HistoryError, read

    if path.endswith(".json"):
        from kafkaproof.counterexample import InvalidCounterexample
        from kafkaproof.counterexample import load as load_counterexample
        from kafkaproof.properties.jepsen_kafka import from_history

        try:
            setup, _, violation, history = load_counterexample(path)
        except InvalidCounterexample as e:
            raise HistoryError(f"{path}: not a counterexample file: {e}") from None
        if not history.ops:
            raise HistoryError(f"{path}: the counterexample has no history to analyse")
        return from_history(history), {"final-read": setup.final_read, "source": path}, violation
    ops, header = read(path)
    return ops, header, None


def _index(op) -> object:
    return op.get("index") if isinstance(op, dict) else op


def describe(name: str, error: dict) -> str:
    """One line for a witness: its key, values and the operations (by index) behind it."""
    parts = []
    for field in ("key", "value", "values", "offset", "delta", "skipped", "count"):
        if field in error:
            parts.append(f"{field} {error[field]!r}")
    for field in ("op", "writer", "reader", "max-read"):
        if isinstance(error.get(field), dict):
            parts.append(f"{field} #{_index(error[field])}")
    if "ops" in error:
        parts.append("ops " + " -> ".join(f"#{_index(op)}" for op in error["ops"]))
    if "cycle" in error:
        steps = [f"{s['type']} {s['key']!r}" for s in error["steps"]]
        parts.append("cycle " + " ".join(f"#{_index(a)} -{s}->" for a, s in zip(error["cycle"], steps, strict=False))
                     + f" #{_index(error['cycle'][-1])}")
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    from kafkaproof.properties.jepsen_history import HistoryError

    try:
        ops, header, oracle = load(args.file)
    except HistoryError as e:
        print(f"kafkaproof analyse: {e}", file=sys.stderr)
        return 2
    final_read = {"yes": True, "no": False}.get(args.final_read, header.get("final-read", True))
    try:
        write_histories(ops, final_read, args.edn, args.jsonl)
    except OSError as e:
        print(f"kafkaproof analyse: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    return judge_and_report(args.file, ops, final_read, args.ww_deps, args.json, oracle)[0]


def write_histories(ops: list[dict], final_read: bool, edn: str | None, jsonl: str | None) -> None:
    """The history as Jepsen's history.edn (client processes numbered, as its checkers
    need) and in kafkaproof's JSON lines, where asked."""
    from kafkaproof.properties.jepsen_history import numbered, write_edn, write_jsonl

    for path, write in ((edn, lambda: write_edn(*numbered(ops, {"final-read": final_read}))),
                        (jsonl, lambda: write_jsonl(ops, {"final-read": final_read}))):
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(write())


def judge_and_report(source: str, ops: list[dict], final_read: bool, ww_deps: bool, as_json: bool,
                     oracle: dict | None = None, faults_expected: bool = False, final_read_complete: bool = True,
                     extra: dict | None = None) -> tuple[int, dict]:
    """Judge `ops` from the history alone and print the verdict (a table, or JSON with
    `extra` merged in): the exit code and the verdict as a dict. `faults_expected`: a
    nemesis was asked for, so a run in which it injected nothing is UNKNOWN, never a VALID
    under faults; so is one whose final read stopped short of what was acknowledged."""
    from kafkaproof.properties.jepsen_kafka import NEMESIS, analysis

    found = analysis(ops, final_read=final_read, ww_deps=ww_deps)
    faults = Counter(op["f"] for op in ops if op.get("process") == NEMESIS and op["type"] != "invoke")
    verdict, why = found.verdict
    if verdict == "VALID" and faults_expected and not faults:
        verdict, why = "UNKNOWN", "the nemesis injected no fault: the run says nothing about faults"
    if verdict == "VALID" and not final_read_complete:
        verdict, why = "UNKNOWN", "the final read did not reach every acknowledged offset in time"
    model = (", ".join(f"{f} x{n}" for f, n in sorted(faults.items())) if faults else
             "no nemesis operations: the history shows no faults, so a VALID says nothing about them")
    summary = {"verdict": verdict, "why": why, "failure_model": model, "bad": found.bad, "allowed": sorted(found.allowed & set(found.errors)),
               "counts": {k: len(v) for k, v in sorted(found.errors.items())}, "judged": found.judged,
               "faults": dict(sorted(faults.items())), "final_read": final_read, "ww_deps": ww_deps,
               "oracle": oracle and {k: oracle.get(k) for k in ("guarantee", "name", "detail")},
               "witnesses": {k: describe(k, v[0]) for k, v in sorted(found.errors.items())}, **(extra or {})}
    if as_json:
        print(json.dumps(summary, indent=2))
    else:
        _print(source, ops, found, final_read, model, oracle)
        print(f"{verdict}: {why}")
    return {"UNKNOWN": UNKNOWN_EXIT, "VALID": 0, "INVALID": 1}[verdict], summary


def _print(path: str, ops: list[dict], found, final_read: bool, model: str, oracle: dict | None) -> None:
    from rich.console import Console
    from rich.table import Table

    fs = Counter(op["f"] for op in ops if op["type"] == "ok")
    console = Console(width=max(120, Console().width))
    console.print(f"{path}: {len(ops)} operations ({', '.join(f'{n} ok {f}' for f, n in sorted(fs.items()))});"
                  f" {len(found.orders)} keys; final read: {'yes' if final_read else 'no (unseen not judged)'}")
    console.print(f"failure model (what the history records): {model}")
    if found.errors:
        table = Table(title="anomalies (Jepsen's names)")
        for col in ("anomaly", "count", "Kafka allows it", "first witness"):
            table.add_column(col)
        for name, errs in sorted(found.errors.items()):
            table.add_row(name, str(len(errs)), "yes" if name in found.allowed else "[bold red]no[/bold red]",
                          describe(name, errs[0]))
        console.print(table)
    if oracle:
        console.print(f"the simulator's oracle (extra evidence): {oracle.get('guarantee')}: {oracle.get('name')}"
                      f" - {oracle.get('detail', '')}")
