"""`kafkaproof test`: Jepsen's Kafka workload over the wire against a cluster - one it
starts (`--processes 3`: a controller and three `serve` processes it can kill and pause)
or any Kafka-compatible one (`--bootstrap-servers`, faulted through `--nemesis` commands)
- judged from the history alone. The results directory holds the history (history.edn
for Jepsen's tools, history.jsonl), verdict.json and each process's log.

Exit codes as `analyse`: 0 valid, 1 an anomaly Kafka forbids, 2 bad input (an
unreachable bootstrap among them), 3 UNKNOWN."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from kafkaproof.analyse import judge_and_report, write_histories


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--bootstrap-servers", metavar="HOST:PORT[,...]", help="a running Kafka-compatible cluster")
    where.add_argument("--processes", type=int, metavar="N",
                       help="start N brokers (and a controller), each a `kafkaproof serve` process")
    p.add_argument("--netns", action="store_true",
                   help="with --processes: each process in its own network namespace (root), for --nemesis partition")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a broker key for the cluster --processes starts (repeatable)")
    p.add_argument("--nemesis", action="append", default=[], metavar="FAULT[=COMMAND]",
                   help="with --processes: kill, pause, and with --netns partition, slow (comma-separated). With --bootstrap-servers: one command"
                        " per fault and its heal, {node} filled in: kill='docker kill {node}' start='docker start"
                        " {node}', pause=... resume=...")
    p.add_argument("--nodes", default="", help="with --bootstrap-servers and --nemesis: the node names for {node}")
    p.add_argument("--nemesis-interval", type=float, default=4.0, help="seconds between faults and heals")
    p.add_argument("--keys", type=int, default=4, help="keys (partitions of one topic)")
    p.add_argument("--concurrency", type=int, default=4, help="client processes")
    p.add_argument("--rate", type=float, default=40.0, help="operations per second, all processes")
    p.add_argument("--duration", type=float, default=20.0, help="seconds of operations before the final read")
    p.add_argument("--acks", default="all", choices=("0", "1", "all", "-1"))
    p.add_argument("--idempotence", choices=("yes", "no"), default="yes")
    p.add_argument("--txn", action="store_true", help="transactions of sends and polls (read_committed)")
    p.add_argument("--sub-via", choices=("assign", "subscribe"), default="assign")
    p.add_argument("--sub-p", type=float, default=0.05, help="chance that an operation is an assign/subscribe")
    p.add_argument("--poll-p", type=float, default=0.5, help="chance that a micro-operation polls rather than sends")
    p.add_argument("--crash-p", type=float, default=0.02, help="chance that an operation crashes its client")
    p.add_argument("--client", choices=("confluent", "kafka-python"), default="confluent")
    p.add_argument("--topic", default="kafkaproof-jepsen")
    p.add_argument("--seed", type=int, default=0, help="the workload's and the nemesis's choices")
    p.add_argument("--ww-deps", action="store_true", help="as analyse --ww-deps")
    p.add_argument("--out", default="kafkaproof-test", help="the results directory (default ./kafkaproof-test)")
    p.add_argument("--json", action="store_true", help="print the verdict as JSON")
    p.add_argument("--report", metavar="DIR", help="write the report here (default: index.html in --out)")
    p.add_argument("--junit", metavar="FILE", help="also write the verdicts as JUnit XML here")


def _nemesis_plan(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """The faults asked for, and for an external cluster the command for each fault and heal."""
    from kafkaproof.nemesis import HEALS

    kinds, commands = [], {}
    for item in args.nemesis:
        if "=" in item:
            f, command = item.split("=", 1)
            commands[f.strip()] = command
        else:
            kinds += [k.strip() for k in item.split(",") if k.strip()]
    unknown = [k for k in [*kinds, *commands] if k not in HEALS and k not in HEALS.values()]
    if unknown:
        raise ValueError(f"--nemesis: unknown fault {', '.join(unknown)}; faults: {', '.join(HEALS)}"
                         f" (heals: {', '.join(HEALS.values())})")
    if args.processes is not None:
        if commands:
            raise ValueError("--nemesis FAULT=COMMAND is for --bootstrap-servers; --processes faults its own"
                             " processes (--nemesis kill,pause)")
        needs = sorted({"partition", "slow"} & set(kinds))
        if needs and not args.netns:
            raise ValueError(f"--nemesis {', '.join(needs)} works on links between namespaces: add --netns"
                             " (needs root)")
        return kinds, {}
    if kinds:
        raise ValueError("--bootstrap-servers: say how to inject each fault, --nemesis kill='COMMAND {node}'")
    kinds = [f for f in commands if f in HEALS]
    missing = [f"{HEALS[f]} (to end {f})" for f in kinds if HEALS[f] not in commands]
    if missing:
        raise ValueError(f"--nemesis: no command for {', '.join(missing)}: a fault the nemesis cannot heal would"
                         " outlast the run")
    if kinds and not args.nodes:
        raise ValueError("--nemesis commands need --nodes NAME,NAME,... for {node}")
    return kinds, commands


def run(args: argparse.Namespace) -> int:
    from kafkaproof.nemesis import (
        CONTROLLER,
        Nemesis,
        NemesisError,
        Network,
        ProcessCluster,
        command_actions,
        process_actions,
    )
    from kafkaproof.workload import Options

    try:
        kinds, commands = _nemesis_plan(args)
        if args.processes is not None and args.processes < 1:
            raise ValueError("--processes must be at least 1")
        if min(args.keys, args.concurrency) < 1 or args.rate <= 0 or args.duration <= 0:
            raise ValueError("--keys, --concurrency, --rate and --duration must be positive")
    except ValueError as e:
        print(f"kafkaproof test: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _log_clients_to(out / "clients.log")
    cluster = None
    try:
        if args.processes is not None:
            network = None
            if args.netns:
                why = Network.unavailable() or ("slow" in kinds and Network.netem_unavailable()) or None
                if why:
                    raise NemesisError(f"--netns: {why}")
                network = Network([CONTROLLER, *range(args.processes)])
            cluster = ProcessCluster(out / "cluster", args.set, args.processes, network)
            bootstrap, nodes, act = cluster.bootstrap, list(range(args.processes)), process_actions(cluster)
        else:
            bootstrap, nodes, act = args.bootstrap_servers, [n for n in args.nodes.split(",") if n], \
                command_actions(commands)
        options = Options(bootstrap=bootstrap, topic=args.topic, keys=args.keys, concurrency=args.concurrency,
                          rate=args.rate, duration=args.duration, acks=args.acks, idempotence=args.idempotence == "yes",
                          txn=args.txn, sub_via=args.sub_via, sub_p=args.sub_p, crash_p=args.crash_p, poll_p=args.poll_p,
                          client=args.client, seed=args.seed,
                          replication_factor=min(3, args.processes or 3))
        nemesis = Nemesis(kinds, nodes, act, args.nemesis_interval, args.seed) if kinds else None
        outcome = _with_progress(options, nemesis, quiet=args.json)
    except (ConnectionError, ValueError, NemesisError) as e:
        print(f"kafkaproof test: {e}", file=sys.stderr)
        return 2
    finally:
        if cluster is not None:
            cluster.stop()
    write_histories(outcome.ops, True, str(out / "history.edn"), str(out / "history.jsonl"))
    code, summary = judge_and_report(str(out / "history.edn"), outcome.ops, True, args.ww_deps, args.json,
                                     faults_expected=bool(kinds), final_read_complete=outcome.final_read_complete,
                                     extra={"failures": outcome.failures, "options": vars(options),
                                            "dangers": outcome.dangers})
    if not args.json:
        print("reached (observed from outside, metadata every 0.5 s): "
              + (", ".join(f"{k} {n}x" for k, n in outcome.dangers.items() if n) or "no danger event"))
    (out / "verdict.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    if _report(args, out, outcome, summary):
        return 2
    for failure in outcome.failures:
        print(f"kafkaproof test: a client process failed: {failure}", file=sys.stderr)
    return code


def _report(args: argparse.Namespace, out: Path, outcome, summary: dict) -> int:
    """index.html in the results directory (and --junit): Jepsen's verdict, each anomaly
    (violated, or allowed by Kafka), the faults and danger events, the run's plots."""
    from kafkaproof.properties.run_stats import run_stats
    from kafkaproof.report import Run, Verdict, write_reports

    model = summary["failure_model"]
    reached = dict(outcome.dangers)
    verdicts = [Verdict("Jepsen's Kafka analysis", summary["verdict"], summary["why"], model, args.topic,
                        dangers=reached)]
    verdicts += [Verdict(name, "VIOLATED" if name in summary["bad"] else "ALLOWED",
                         f"{count}x; first: {summary['witnesses'][name]}", model, args.topic, dangers=reached)
                 for name, count in summary["counts"].items()]
    context = [f"kafkaproof test: {len(outcome.ops)} operations, {args.concurrency} client processes"
               f" ({args.client}), {args.keys} keys, acks={args.acks}, {args.duration:g} s, seed {args.seed}",
               f"faults injected: {model}"]
    runs = [Run("the run", list(summary["bad"]), run_stats(outcome.ops))]
    args.report = args.report or str(out)
    return write_reports(args, f"kafkaproof test {args.topic}", context, verdicts, runs, clock="wall")


def _with_progress(options, nemesis, quiet: bool):
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from kafkaproof.workload import run as run_workload

    if quiet:
        return run_workload(options, nemesis)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[ops]} ops"),
                  TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("workload", total=1.0, ops=0)
        started = time.monotonic()

        def progress(done: float, recorder) -> None:
            bar.update(task, completed=done, ops=len(recorder.ops),
                       description="workload" if time.monotonic() - started < options.duration else "final read")
        return run_workload(options, nemesis, progress)


def _log_clients_to(path: Path) -> None:
    import logging

    from kafkaproof.workload import CLIENT_LOG

    for old in list(CLIENT_LOG.handlers):
        CLIENT_LOG.removeHandler(old)
        old.close()
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    CLIENT_LOG.addHandler(handler)
    CLIENT_LOG.setLevel(logging.INFO)
