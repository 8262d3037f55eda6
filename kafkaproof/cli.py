"""The `kafkaproof` command line. Exit codes: 0 ok, 1 a finding (corruption,
violation), 2 a usage or input error, 3 UNKNOWN (verify: not modelled), 4 NOT SHOWN
(check: a "held" from runs that never reached the guarantee's dangers)."""

from __future__ import annotations

import argparse
import functools
import sys

from kafkaproof import __version__

NOT_SHOWN_EXIT = 4


def _dump_log(args: argparse.Namespace) -> int:
    from kafkaproof.impl.storage.dump import dump_segment, segment_files

    try:
        files = segment_files(args.path)
    except OSError as exc:
        print(f"kafkaproof dump-log: {exc}", file=sys.stderr)
        return 2
    if not files:
        print(f"kafkaproof dump-log: {args.path}: no .log segment files here", file=sys.stderr)
        return 2
    all_ok = True
    for path in files:
        try:
            for line, ok in dump_segment(path, records=args.records):
                print(line)
                all_ok &= ok
        except OSError as exc:
            print(f"kafkaproof dump-log: {path}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    return 0 if all_ok else 1


def _explore(args: argparse.Namespace) -> int:
    import json

    from kafkaproof.model.explore import explore, restrict

    built = {"producer": _producer_model, "group": _group_model,
             "transactions": _txn_model}.get(args.model, _replication_model)(args)
    if isinstance(built, str):
        print(f"kafkaproof explore: {built}", file=sys.stderr)
        return 2
    model, fields, scope_text, invariants = built
    if args.invariant:
        unknown = set(args.invariant) - set(invariants)
        if unknown:
            print(f"kafkaproof explore: no invariant {', '.join(sorted(unknown))} in this model"
                  f" (it has {', '.join(invariants)})", file=sys.stderr)
            return 2
        restrict(model, args.invariant)
        invariants = tuple(i for i in invariants if i in args.invariant)
    result = explore(model, symmetry=args.model == "replication" and not args.no_symmetry,
                     max_states=args.max_states, executor=args.executor)
    summary = {
        "model": args.model, **fields, "symmetry": args.model == "replication" and not args.no_symmetry,
        "transitions": result.transitions, "distinct_states": result.distinct, "depth": result.depth,
        "seconds": round(result.seconds, 2), "complete": result.complete,
        "holds": result.holds, "invariant": result.invariant, "detail": result.detail,
        "trace": [action for action, _ in result.trace],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        scope = "every reachable state" if result.complete else f"the first {result.distinct} states (--max-states)"
        print(f"{scope_text}; explored {scope}")
        print(f"transitions {result.transitions}, distinct states {result.distinct}, depth {result.depth}, "
              f"time {result.seconds:.1f} s")
        if result.holds and not result.complete:
            print("no violation in the states explored, but the search was cut: nothing is proved")
        elif result.holds:
            print(f"every invariant holds ({', '.join(invariants)})")
        else:
            print(f"VIOLATED {result.invariant}: {result.detail}")
            print(f"shortest trace, {len(result.trace) - 1} steps:")
            for i, (action, state) in enumerate(result.trace):
                print(f"{i:3d}. {action}")
                if args.states or i == len(result.trace) - 1:
                    print("     " + model.describe(state).replace("\n", "\n     "))
    if not result.holds:
        return 1
    return 0 if result.complete else 3  # 3: unknown, like `verify`'s UNKNOWN


def _replication_model(args: argparse.Namespace):
    from kafkaproof.model.replication import Bounds, Model

    if not 1 <= args.replicas <= 5 or not 0 <= args.records <= 5 or not 0 <= args.max_epoch <= 6:
        return "bounds must be 1-5 replicas, 0-5 records, 0-6 epochs"
    if not 1 <= args.min_isr <= args.replicas:
        return "--min-isr must be between 1 and --replicas"
    if args.unclean_shutdowns is not None and args.unclean_shutdowns < 0:
        return "--unclean-shutdowns needs a count of 0 or more"
    bounds = Bounds(args.replicas, args.records, args.max_epoch, args.unclean, args.power_loss, args.min_isr,
                    args.unclean_shutdowns)
    fields = {"variant": args.variant, "replicas": args.replicas, "records": args.records,
              "max_epoch": args.max_epoch, "unclean": args.unclean, "power_loss": args.power_loss,
              "min_isr": args.min_isr, "unclean_shutdowns": args.unclean_shutdowns}
    text = (f"variant {args.variant}: {args.replicas} replicas, {args.records} records, epochs <= "
            f"{args.max_epoch}{', unclean election' if args.unclean else ''}"
            f"{', power loss' if args.power_loss else ''}"
            f"{f', at most {args.unclean_shutdowns} unclean shutdown(s)' if args.unclean_shutdowns is not None else ''},"
            f" min.insync.replicas={args.min_isr}")
    invariants = ("TypeOk", "ReplicaLogConsistency", "StrongIsr", "LeaderCompleteness")
    if args.variant == "kip966":  # (the properties of the KIP-966 TLA+ specification the others lack)
        invariants += ("LeaderCandidateCompleteness", "ReplicationQuorumSuperset", "NoCommittedRecordLostGlobally")
    return Model(args.variant, bounds), fields, text, invariants


def _group_model(args: argparse.Namespace):
    from kafkaproof.model.groups import GroupBounds, GroupModel

    if not 1 <= args.records <= 5 or not 1 <= args.members <= 3:
        return "bounds must be 1-5 records and 1-3 members"
    model = GroupModel(args.strategy, GroupBounds(args.records, args.members, args.max_epoch))
    fields = {"variant": model.variant, "records": args.records, "members": args.members,
              "max_generation": args.max_epoch, "strategy": args.strategy}
    text = f"{model.variant}: {args.records} records, {args.members} members, generations <= {args.max_epoch}"
    return model, fields, text, ("NoDuplicates", "NoLoss")


def _producer_model(args: argparse.Namespace):
    from kafkaproof.model.producer import ProducerBounds, ProducerModel

    if (not 0 <= args.records <= 5 or not 1 <= args.max_in_flight <= 10 or not 0 <= args.retries <= 5
            or not 0 <= args.sequence_breaks <= 3):
        return "bounds must be 0-5 records, 1-10 requests in flight, 0-5 retries, 0-3 sequence breaks"
    bounds = ProducerBounds(args.records, args.idempotence == "true", args.max_in_flight, args.retries,
                            args.sequence_breaks)
    try:
        model = ProducerModel(bounds)
    except ValueError as exc:
        return str(exc)
    fields = {"variant": model.variant, "records": args.records, "enable_idempotence": bounds.idempotence,
              "max_in_flight": args.max_in_flight, "retries": args.retries, "sequence_breaks": args.sequence_breaks}
    return model, fields, f"{model.variant}: {args.records} records", ("NoDuplicates", "SendOrder", "AckedInLog")


def _txn_model(args: argparse.Namespace):
    from kafkaproof.model.transactions import TxnBounds, TxnModel

    if not 1 <= args.transactions <= 4 or not 0 <= args.duplicates <= 3:
        return "bounds must be 1-4 transactions and 0-3 late duplicates"
    bounds = TxnBounds(transactions=args.transactions, duplicates=args.duplicates, kip890=args.kip890 == "true")
    model = TxnModel(bounds)
    fields = {"variant": model.variant, "transactions": args.transactions, "late_duplicates": args.duplicates,
              "kip890": bounds.kip890}
    return model, fields, model.variant, ("NoAbortedRead", "NoLostCommit")


def _guarantees(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from kafkaproof.claims import NOT_SHOWN

    if args.examples < 1:
        print("kafkaproof guarantees: --examples must be at least 1", file=sys.stderr)
        return 2
    if sum((args.groups, args.transactions, args.agreement, args.unsafe, args.safe)) > 1:
        print("kafkaproof guarantees: choose one of --groups, --transactions, --agreement, --unsafe, --safe",
              file=sys.stderr)
        return 2
    if args.safe:
        from kafkaproof import unsafe
        from kafkaproof.claims import agreement

        runs = args.runs or 200
        model, rows, totals, results = unsafe.safe_campaign(runs, executor=args.executor, stats=bool(args.report))
        print(f"the eight practices ({' '.join(unsafe.PRACTICES)}, commit after processing), {runs} runs,"
              f" failures: {model}")
        said = {g: (row["expected"] or {}).get("status", "-") for g, row in rows.items()}
        for g, row in rows.items():
            print(f"  {g:24} {row['verdict']:9} {row['evidence']} (verify: {said[g]})")
        print("danger events over all runs: " + ", ".join(f"{d} {n}" for d, n in totals.items()))
        described = unsafe.setup_of(unsafe.PRACTICES_CHOICE, model).failure_model.describe()
        print(f"failure model: {described}")
        contradicted = [g for g, row in rows.items() if agreement(said[g], [bool(row["violated"])]) == "contradicted"]
        written = 0
        if args.report or args.junit:
            from kafkaproof.report import from_check, write_reports

            verdicts, ran = from_check(rows, results, described, "the eight practices", said)
            written = write_reports(args, "kafkaproof guarantees --safe", [
                f"the eight practices ({' '.join(unsafe.PRACTICES)}, commit after processing), {runs} runs"],
                verdicts, ran)
        return written or (1 if contradicted else 0)
    if args.unsafe:
        from kafkaproof import unsafe

        runs = args.runs or 20
        rows = []
        for choice in unsafe.CHOICES:
            rows.append(unsafe.row(choice, runs, args.budget, args.executor))
            print(f"{choice.name}: {rows[-1].check} / verify {rows[-1].verify} / hunt {rows[-1].hunt}"
                  f" ({rows[-1].seconds:.0f} s)", file=sys.stderr)
        print(unsafe.markdown(rows, runs, args.budget))
        written = 0
        if args.report or args.junit:
            from kafkaproof.report import Verdict, write_reports

            # A row passes when check, verify and hunt all find what the choice breaks.
            verdicts = [Verdict(r.choice.guarantee, "FOUND" if unsafe.found_by_all(r) else "MISSED",
                                f"verify {r.verify}; check {r.check}; hunt {r.hunt} (without it: {r.without})",
                                unsafe.setup_of(r.choice, r.model).failure_model.describe(), r.choice.name)
                        for r in rows]
            written = write_reports(args, "kafkaproof guarantees --unsafe",
                                    [f"each unsafe choice alone on the defaults: {runs} runs, hunts of"
                                     f" {args.budget:g} s"], verdicts)
        return written or (0 if all(unsafe.found_by_all(r) for r in rows) else 1)
    if args.agreement:
        from kafkaproof.agreement import markdown, table

        runs = args.runs or 8
        cells = table(runs, args.examples, executor=args.executor)
        print(markdown(cells, runs, args.examples))
        written = 0
        if args.report or args.junit:
            from kafkaproof.agreement import FAILURE_MODELS, ROWS
            from kafkaproof.impl.engine import build_setup
            from kafkaproof.report import Verdict, write_reports

            described = {(row, model): build_setup(sets=ROWS[row], faults=FAILURE_MODELS[model]).failure_model.describe()
                         for row, model in cells}
            verdicts = [Verdict(g, c.agreement.upper(), c.text(), described[(row, model)], row)
                        for (row, model), by_g in cells.items() for g, c in by_g.items()]
            written = write_reports(args, "kafkaproof guarantees --agreement",
                                    [f"verify, check ({runs} runs) and the campaign ({args.examples} runs) on the"
                                     " same questions: they must not contradict"], verdicts)
        return written or (1 if any(c.agreement == "contradicted" for by_g in cells.values()
                                    for c in by_g.values()) else 0)
    from kafkaproof.claims import claims, verdict
    from kafkaproof.guided import steering
    from kafkaproof.impl.engine import campaign as rows_of
    from kafkaproof.impl.sim.consumer_app import DESCRIPTIONS
    from kafkaproof.impl.sim.faults import FailureModel
    from kafkaproof.properties import CLUSTER_GUARANTEES, GROUP_GUARANTEES, TXN_GUARANTEES

    # One engine for the three tables: the rows differ, not the runs or the judging.
    if args.transactions:
        configs, GUARANTEES = rows_of.TXN_CONFIGS, tuple(TXN_GUARANTEES)
    elif args.groups:
        configs, GUARANTEES = rows_of.GROUP_CONFIGS, tuple(GROUP_GUARANTEES)
    else:
        configs, GUARANTEES = rows_of.CONFIGS, tuple(CLUSTER_GUARANTEES)
    said = {name: claims(row.setup(), GUARANTEES) for name, row in configs.items()}
    # Runs steered as check's (kafkaproof/guided.py): by verify's breaking schedules, and
    # by schedules that reach the dangers of what it does not break.
    steer = {name: steering(row.setup(), said[name]) for name, row in configs.items()}
    collected: dict[str, list] | None = {} if args.report else None
    table = rows_of.guarantee_table(args.examples, GUARANTEES, configs, steer, executor=args.executor,
                                    collect=collected)
    for name, row in table.items():  # what verify says of the same row, beside it
        row["verify"] = {g: c.status for g, c in said[name].items()}
        row["verdict"] = {g: verdict({"name": g, "runs": row["runs"], "violated": row[g], "anomalies": [],
                                      "reached": row["reached"][g]}, said[name][g])[:2] for g in GUARANTEES}
    # Each row's settings, those every row shares once below them.
    settings = {name: {**c.broker, **c.producer, **c.consumer} for name, c in configs.items()}
    shared = {k: v for k, v in next(iter(settings.values())).items() if all(s.get(k) == v for s in settings.values())}
    notes = {name: "; ".join(filter(None, (DESCRIPTIONS.get(c.strategy, ""), ", ".join(
        f"{k}={v}" for k, v in settings[name].items() if k not in shared)))) for name, c in configs.items()}
    models = {FailureModel.of(c.faults, 1, c.broker).describe() for c in configs.values()}
    footer = (("every row: " + ", ".join(f"{k}={v}" for k, v in shared.items()) + "; " if shared else "")
              + "faults, drawn by Hypothesis per run from each row's failure model: "
              + " | ".join(sorted(models)) + "; (verify: X) is verify's verdict under the same failure model")
    kind = "commit strategy" if args.groups else "transaction protocol" if args.transactions else "configuration"
    written = (_guarantees_report(args, kind, configs, GUARANTEES, table, collected or {}, footer)
               if args.report or args.junit else 0)
    if args.json:
        print(json.dumps(table, indent=2))
        return written
    out = Table(title=f"Guarantees by {kind} ({args.examples} Hypothesis runs each)")
    out.add_column(kind)
    for g in GUARANTEES:
        out.add_column(g)
    out.add_column("faults", justify="right")
    for config, row in table.items():
        said, judged_by_runs = row.get("verify", {}), row.get("verdict", {})
        cells = [(f"[red]VIOLATED {row[g]}/{row['runs']}[/red]" if row[g] else
                  "[yellow]NOT SHOWN[/yellow]" if judged_by_runs.get(g, ("",))[0] == NOT_SHOWN else
                  f"held ({sum(row['reached'][g].values())} dangers)" if row.get("reached", {}).get(g) else "held")
                 + (f" (verify: {said[g]}{_disagreement(said[g], bool(row[g]))})" if g in said else "")
                 for g in GUARANTEES]
        out.add_row(config, *cells, str(row["faults"]))
    console = Console(width=max(110, Console().width))
    console.print(out)
    for config in table:
        console.print(f"  {config}: {notes[config]}", highlight=False)
    console.print("  " + footer, highlight=False)
    return written


def _guarantees_report(args, kind: str, configs: dict, guarantees, table: dict, collected: dict, footer: str) -> int:
    """The guarantees table as a report: a verdict per row and guarantee, each row's first
    violating run of each guarantee saved (into the report) and drawn, every run's plots."""
    import pathlib

    from kafkaproof.counterexample import save
    from kafkaproof.impl.sim.faults import FailureModel
    from kafkaproof.report import Run, Verdict, write_reports

    verdicts, runs = [], []
    for name, row in table.items():
        model = FailureModel.of(configs[name].faults, 1, configs[name].broker).describe()
        done = collected.get(name, [])
        for g in guarantees:
            word, evidence = row["verdict"][g]
            first = next(((i, setup, r) for i, (setup, r) in enumerate(done) if r.violations.get(g)), None)
            saved = (str(save(pathlib.Path(args.report) / "counterexamples", first[1], first[2], g, with_fix=False))
                     if first is not None and args.report else None)
            verdicts.append(Verdict(g, word, f"{evidence} (verify: {row['verify'].get(g, '-')})", model, name,
                                    row["runs"], "" if first is None else f"run {first[0] + 1} (seed {first[2].seed})",
                                    saved, row["reached"][g]))
        runs += [Run(f"{name} run {i + 1}", r.violated, r.stats or {}) for i, (_, r) in enumerate(done)]
    title = f"kafkaproof guarantees by {kind}"
    context = [f"{args.examples} Hypothesis runs per row", footer]
    return write_reports(args, title, context, verdicts, runs)


def _check(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from kafkaproof.claims import BROKEN, HELD, NOT_SHOWN
    from kafkaproof.counterexample import save
    from kafkaproof.guided import check_runs

    if args.runs < 1:
        print("kafkaproof check: --runs must be at least 1", file=sys.stderr)
        return 2
    setup = _setup_from(args)
    if setup is None:
        return 2
    model = setup.failure_model  # (a steered run's cut is a partition of one replica's links)
    console = Console(stderr=True)
    with Progress(console=console, transient=True, disable=args.json) as bar:
        task = bar.add_task(f"{args.runs} runs of {setup.seconds} simulated s or more", total=args.runs)
        table, expected, work, results = check_runs(setup, args.runs, args.seed, progress=lambda: bar.advance(task),
                                                    verify=not args.no_verify, executor=args.executor,
                                                    stats=bool(args.report))
    steered = sum(1 for s, _ in work if s is not setup)
    setup_of = {s: run_setup for run_setup, s in work}
    by_seed = {r.seed: r for r in results}
    for guarantee, row in table.items():
        row["counterexample"] = None
        first = row["first_violating_seed"]
        if first is not None and not args.no_save:
            row["counterexample"] = str(save(args.out, setup_of[first], by_seed[first], guarantee))
    violated = any(row["violated"] for row in table.values())
    not_shown = [g for g, row in table.items() if row["verdict"] == NOT_SHOWN]
    code = 1 if violated else NOT_SHOWN_EXIT if not_shown else 0
    written = 0  # (a report that cannot be written is exit 2, after the verdicts are shown)
    if args.report or args.junit:
        from kafkaproof.report import from_check, write_reports

        scope = setup.slug()
        verdicts, runs = from_check(table, results, model.describe(), scope)
        context = [f"kafkaproof check: {args.runs} runs from seed {args.seed}, faults {','.join(setup.faults)},"
                   f" {steered} steered by verify's breaking schedules", f"configuration: {scope}",
                   f"failure model: {model.describe()}"]
        written = write_reports(args, f"kafkaproof check {scope}", context, verdicts, runs)
    if args.json:
        print(json.dumps({"setup": {"broker": setup.broker, "producer": setup.producer, "consumer": setup.consumer,
                                    "faults": list(setup.faults), "seconds": setup.seconds},
                          "failure_model": model.as_json(),
                          "runs": args.runs, "steered_runs": steered, "seed": args.seed, "guarantees": table},
                         indent=2))
        return written or code
    how = f" ({steered} steered by verify's breaking schedules)" if steered else ""
    out = Table(title=f"kafkaproof check: {args.runs} runs{how}, seeds {args.seed}..{args.seed + args.runs - 1},"
                      f" faults {','.join(setup.faults)}",
                caption=f"failure model: {model.describe()}")
    columns = ("guarantee", "runs", "verdict") + (() if args.no_verify else ("verify says",)) + \
        ("first violating seed", "counterexample")
    for col in columns:
        out.add_column(col, overflow="fold")
    for guarantee, row in table.items():
        style = {BROKEN: "red", NOT_SHOWN: "yellow"}.get(row["verdict"])
        text = f"{row['verdict']} {row['evidence']}" if row["verdict"] != HELD else row["evidence"]
        verdict_cell = f"[{style}]{text}[/{style}]" if style else text
        seed = "" if row["first_violating_seed"] is None else str(row["first_violating_seed"])
        said = () if args.no_verify else (_expected_cell(expected[guarantee], bool(row["violated"])),)
        out.add_row(guarantee, str(row["runs"]), verdict_cell, *said, seed, row["counterexample"] or "")
    Console(width=max(120, Console().width)).print(out)
    settings = ", ".join(f"{k}={v}" for scope in (setup.broker, setup.producer, setup.consumer)
                         for k, v in sorted(scope.items())) or "Kafka's defaults"
    print(f"configuration: {settings}" + (f"; consumer group committing {setup.strategy}" if setup.strategy else ""))
    if violated:
        print("replay a counterexample with: kafkaproof replay FILE")
    for g in not_shown:
        print(f"NOT SHOWN {g}: {table[g]['evidence']}. {table[g]['hint']}")
    if not_shown and not violated:
        print("(exit 4: a 'held' from runs that did not show the danger is no evidence)")
    return written or code


def _disagreement(status: str, violated: bool) -> str:
    """Beside verify's verdict: how the runs' verdict stands to it (kafkaproof/claims.py)."""
    from kafkaproof.claims import agreement

    said = agreement(status, [violated])
    return "" if said in ("agree", "unknown") else f" - {said}"


def _expected_cell(claim, violated: bool) -> str:
    """verify's verdict beside check's (a contradiction is a bug in the model or the
    implementation, never hidden)."""
    if claim.status == "UNKNOWN":
        return f"UNKNOWN ({claim.why})"
    said = _disagreement(claim.status, violated)
    style = {" - contradicted": "bold red", " - not shown": "yellow"}.get(said)
    return f"[{style}]{claim.status}{said} by these runs[/{style}]" if style else claim.status


def _hunt(args: argparse.Namespace) -> int:
    import json

    from kafkaproof.counterexample import save
    from kafkaproof.hunt import hunt
    from kafkaproof.properties import AVAILABILITY_GUARANTEES, GROUP_GUARANTEES, GUARANTEES

    if args.guarantee in GROUP_GUARANTEES and not args.commit_strategy:
        print("kafkaproof hunt: group guarantees need --commit-strategy", file=sys.stderr)
        return 2
    if args.guarantee not in GUARANTEES:
        print(f"kafkaproof hunt: --guarantee must be one of {', '.join(GUARANTEES)}", file=sys.stderr)
        return 2
    if args.budget <= 0:
        print("kafkaproof hunt: --budget must be positive", file=sys.stderr)
        return 2
    setup = _setup_from(args)
    if setup is None:
        return 2
    from kafkaproof.hunt import steering

    # Every other run follows verify's breaking schedule for this guarantee, if it has one.
    steer = steering(setup, args.guarantee)
    if args.guarantee in AVAILABILITY_GUARANTEES and not steer and not setup.schedule:
        print("kafkaproof hunt: availability is judged on a long single failure, which random faults never"
              " make, and verify has no breaking schedule for it here (`kafkaproof verify --guarantee"
              " availability`)", file=sys.stderr)
        return 2
    h = hunt(setup, args.guarantee, args.budget, args.seed, steer=steer, executor=args.executor)
    path = save(args.out, h.setup, h.result, args.guarantee) if h.found else None
    written = _hunt_report(args, setup, h, path) if args.report or args.junit else 0
    if not h.found:
        print(f"no {args.guarantee} violation in {h.seeds_tried} runs (seeds {args.seed}.."
              f"{args.seed + h.seeds_tried - 1}, {setup.seconds} simulated s each, faults {','.join(setup.faults)})"
              f" within {h.seconds_spent:.1f} s")
        if h.reached:  # what the runs went through: no violation is no evidence without them
            seen = ", ".join(f"{d} {k}x" for d, k in h.reached.items() if k) or "none"
            unseen = ", ".join(d for d, k in h.reached.items() if not k)
            print(f"danger events reached: {seen}" + (f"; never: {unseen}" if unseen else ""))
        print(f"failure model: {setup.failure_model.describe()}")
        return written
    v = h.result.violations[args.guarantee][0]
    summary = {"guarantee": args.guarantee, "seed": h.result.seed, "seeds_tried": h.seeds_tried,
               "anomaly": v["name"], "detail": v["detail"], "first_found": str(h.first_size),
               "shrunk": str(h.shrunk_size), "shrink_runs": h.shrink_runs, "seconds": round(h.seconds_spent, 2),
               "counterexample": str(path), "failure_model": setup.failure_model.as_json(),
               "steered": bool(h.setup.schedule) and not setup.schedule}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        how = " (a run steered by verify's breaking schedule)" if summary["steered"] else ""
        print(f"found {v['name']} at seed {h.result.seed}{how} after {h.seeds_tried} run(s): {v['detail']}")
        print(f"shrunk from {h.first_size} to {h.shrunk_size} ({h.shrink_runs} shrink runs,"
              f" {h.seconds_spent:.1f} s in all)")
        print(f"saved {path}; replay it with: kafkaproof replay {path}")
    return written or 1


def _hunt_report(args, setup, h, path) -> int:
    """A hunt as a report: found (VIOLATED, with the time and runs it took, the shrunk run's
    plots and diagram) or not (NOT FOUND, with the danger events the runs reached)."""
    from kafkaproof.impl.engine.run import stats_of
    from kafkaproof.report import Run, Verdict, write_reports

    model = setup.failure_model.describe()
    if h.found:
        v = h.result.violations[args.guarantee][0]
        verdict = Verdict(args.guarantee, "VIOLATED", f"{v['name']}: {v['detail']}", model, setup.slug(),
                          h.seeds_tried, f"after {h.found_after_s:.1f} s and {h.seeds_tried} run(s) (seed"
                          f" {h.result.seed}), shrunk in {h.shrink_runs} runs", str(path), h.result.dangers)
        # (the shrunk run keeps its history: its figures come from it, not from running it again)
        runs = [Run(f"seed {h.result.seed}, shrunk", h.result.violated, stats_of(h.result.history,
                                                                                 h.result.violations))]
    else:
        verdict = Verdict(args.guarantee, "NOT FOUND", f"no violation in {h.seeds_tried} runs within"
                          f" {h.seconds_spent:.1f} s", model, setup.slug(), h.seeds_tried, "", None, h.reached)
        runs = []
    context = [f"kafkaproof hunt --guarantee {args.guarantee}: budget {args.budget:g} s from seed {args.seed},"
               f" faults {','.join(setup.faults)}", f"configuration: {setup.slug()}", f"failure model: {model}"]
    return write_reports(args, f"kafkaproof hunt {args.guarantee} {setup.slug()}", context, [verdict], runs)


def _catalogue(args: argparse.Namespace) -> int:
    from kafkaproof.catalogue import ENTRIES, build

    names = [e[0] for e in ENTRIES]
    args.only = [n for arg in args.only for n in arg.split(",") if n]  # --only a,b as well as --only a --only b
    unknown = [n for n in args.only if n not in names]
    if unknown:
        print(f"kafkaproof catalogue: no entry {', '.join(unknown)}; entries: {', '.join(names)}", file=sys.stderr)
        return 2
    saved = build(args.out, args.budget, args.only or None, executor=args.executor)
    return 0 if len(saved) == len(args.only or names) else 1


def _gallery(args: argparse.Namespace) -> int:
    import pathlib

    from kafkaproof.counterexample import InvalidCounterexample
    from kafkaproof.diagram import gallery

    files = args.files or sorted(pathlib.Path("counterexamples").glob("*.json"))
    if not files:
        print("kafkaproof gallery: no counterexample files (none given, none in counterexamples/)", file=sys.stderr)
        return 2
    try:
        drawn = gallery(files, args.out)
    except (InvalidCounterexample, OSError) as exc:
        print(f"kafkaproof gallery: {exc}", file=sys.stderr)
        return 2
    for name, reproduced in drawn:
        print(f"{args.out}/{name}.html, .png{'' if reproduced else '  (NOT reproduced on replay)'}")
    return 0 if all(r for _, r in drawn) else 1


def _replay(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from kafkaproof import diagram
    from kafkaproof.counterexample import InvalidCounterexample, fix_text, timeline

    hw_moves: list = []
    try:
        vl_spec, reproduced, why, history, violation = diagram.draw(args.file, hw_moves)
    except InvalidCounterexample as exc:
        print(f"kafkaproof replay: {args.file}: {exc}", file=sys.stderr)
        return 2
    title = f"{violation['guarantee']}: {violation['name']} - {violation.get('detail', '')}"
    rows = timeline(history, violation["witness"], hw_moves=hw_moves)
    for path, render in ((args.html, lambda s: diagram.html(s, title)), (args.png, diagram.png),
                         (args.svg, diagram.svg)):
        if path:
            try:
                data = render(vl_spec)
                with open(path, "wb") as f:
                    f.write(data if isinstance(data, bytes) else data.encode())
            except OSError as exc:
                print(f"kafkaproof replay: {path}: {exc.strerror or exc}", file=sys.stderr)
                return 2
    out = Table(title=title)
    for col in ("ms", "lane", "event"):
        out.add_column(col)
    for time, lane, event, witness in rows:
        out.add_row(str(time), lane, f"[bold red]{event}  <- witness[/bold red]" if witness else event)
    Console(width=max(120, Console().width)).print(out)
    fix = violation.get("fix")
    if fix:
        print(f"fix: {fix_text(fix)}")
    if reproduced:
        print(f"reproduced: the same history and the same {violation['name']} violation")
        return 0
    print(f"NOT reproduced: {why}")
    return 1


def _verify(args: argparse.Namespace) -> int:
    import json

    from kafkaproof import reach
    from kafkaproof.impl.broker.config import BrokerConfig
    from kafkaproof.impl.config import ConfigError
    from kafkaproof.verify import (
        GUARANTEES,
        PROVED,
        UNKNOWN,
        VIOLATED,
        confirm,
        describe,
        failure_model,
        judge,
        synthesize,
        values_of,
    )

    judged = (*GUARANTEES, "transactions")  # (transactions: by model/transactions.py's explorer)
    wanted = [g.strip() for g in (args.guarantee or "").split(",") if g.strip()] or list(GUARANTEES)
    unknown = [g for g in wanted if g not in judged]
    if unknown:
        print(f"kafkaproof verify: unknown guarantee {', '.join(unknown)}; choose from {', '.join(judged)}",
              file=sys.stderr)
        return 2
    if not 1 <= args.bound <= 40 or not 0 <= args.max_failures < args.brokers or not 1 <= args.brokers <= 5:
        print("kafkaproof verify: --bound must be 1-40, --brokers 1-5, --max-failures below --brokers",
              file=sys.stderr)
        return 2
    setup = _setup_from(args)
    if setup is None:
        return 2
    if not args.guarantee and setup.producer.get("transactional.id"):
        wanted.append("transactions")
    # The same failure model as check's, from the same --faults (default: crashes and
    # power losses without fsync, Kafka's reality).
    model = failure_model(setup, args.max_failures)
    if args.synthesize:
        opts = {"brokers": args.brokers, "failures": args.max_failures, "bound": args.bound,
                "power_loss": model.power_loss, "duplicates": model.duplicates, "timeout_s": args.timeout}
        values, refuted = synthesize([g for g in wanted if g != "availability"], log=None if args.json else print,
                                     allow_fsync=args.allow_fsync,
                                     elr=BrokerConfig.from_properties(setup.broker).eligible_leader_replicas, **opts)
        if args.json:
            print(json.dumps({"configuration": values, "refuted": refuted,
                              "failure_model": model.as_json()}, indent=2))
        elif values is None:
            print("no configuration proves all of them together")
        else:
            print(f"cheapest configuration proving {', '.join(wanted)} with {args.max_failures} failure(s):")
            print(f"  {describe(values)}")
            print(f"  ({len(refuted)} cheaper candidates refuted by the verifier)")
            print(f"failure model: {model.describe()}")
            if model.unmodelled:  # as verify.within does for one verdict: no silent proof
                print(f"UNKNOWN: the proofs leave out {', '.join(model.unmodelled)}, which no model reads")
        if values is not None and model.unmodelled:
            return 3
        return 0 if values is not None else 1
    try:
        values = values_of(setup)
    except ConfigError as exc:
        print(f"kafkaproof verify: {exc}", file=sys.stderr)
        return 2
    verdicts = []
    for g in wanted:
        v = judge(g, setup, args.max_failures, args.brokers, args.bound, args.timeout)
        if v.status == VIOLATED and not args.no_confirm:
            confirm(v, setup, out=args.out)
        verdicts.append(v)
    if args.json:
        print(json.dumps({"configuration": describe(values), "failure_model": model.as_json(),
                          "settings": reach.explain(setup.given(), wanted), "verdicts": [
            {"guarantee": v.guarantee, "status": v.status, "proof": v.proof, "seconds": round(v.seconds, 3),
             "schedule": [[s.action, s.target] for s in v.trace], "confirmed": v.confirmed,
             "confirmation": v.confirmation, "counterexample": v.counterexample} for v in verdicts]}, indent=2))
    else:
        print(f"configuration: {describe(values)}")
        for line in reach.explain_lines(setup.given(), wanted):
            print(f"  {line}")
        print(f"failure model: {model.describe()}")
        for v in verdicts:
            print(f"{v.guarantee:24} {v.status:9} {v.proof} ({v.seconds:.2f} s)")
            if v.trace:
                noun = "record " if v.model == "producer" else "replica "
                steps = ", ".join(s.action + (f" {noun}{'ab'[s.target] if v.model == 'producer' else s.target}"
                                              if s.target is not None else "") for s in v.trace)
                print(f"{'':24} schedule: {steps}")
            if v.confirmation:
                print(f"{'':24} {v.confirmation}")
            if v.counterexample:
                print(f"{'':24} saved {v.counterexample}; replay it with: kafkaproof replay {v.counterexample}")
    statuses = {v.status for v in verdicts}
    if any(v.confirmed is False for v in verdicts):
        return 1  # a discrepancy is a violation of our own claims: never hidden
    return 1 if VIOLATED in statuses else 3 if UNKNOWN in statuses else 0 if statuses <= {PROVED} else 1


def _demo(args: argparse.Namespace) -> int:
    from kafkaproof.demo import run

    return run()


def _setup_arguments(p: argparse.ArgumentParser) -> None:
    """What a run depends on besides its seed (kafkaproof.impl.engine.Setup): check and hunt.
    build_setup checks the values, so the parser imports nothing heavy."""
    p.add_argument("--broker", help="server.properties")
    p.add_argument("--producer", help="producer.properties")
    p.add_argument("--consumer", help="consumer.properties")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key (broker, producer or consumer: the key says which)")
    from kafkaproof.impl.sim.faults import kinds_help

    p.add_argument("--faults", help="comma-separated fault kinds (default: those marked [default]): " + kinds_help())
    p.add_argument("--seconds", type=int, default=30, help="simulated seconds per run")
    p.add_argument("--commit-strategy", metavar="after|before|auto|auto-async|async",
                   help="also run a consumer group application that commits this way (adds the group"
                        " guarantees and the 'member' fault: a member crashes, a new one joins)")


def _setup_from(args: argparse.Namespace):
    """The Setup the arguments describe, or None after saying what is wrong."""
    from kafkaproof.impl.config import ConfigError
    from kafkaproof.impl.engine import build_setup

    try:
        return build_setup(args.broker, args.producer, args.consumer, args.set, args.faults, args.seconds,
                           args.commit_strategy)
    except ConfigError as exc:
        print(f"kafkaproof {args.command}: {exc}", file=sys.stderr)
        return None


class _HelpFormatter(argparse.HelpFormatter):
    """Never wraps inside a hyphenated name (fault kinds, --options, min.insync.replicas=...)."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def _report_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--report", metavar="DIR", help="also write a report here: DIR/index.html with the verdicts, their"
                   " failure model and danger events, plots (throughput, latency, real-time lag, time to first"
                   " violation) and each counterexample's diagram")
    p.add_argument("--junit", metavar="FILE", help="also write the verdicts as JUnit XML here (one test case per"
                   " guarantee: failed when violated, skipped when not shown either way)")


def _executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=1, help="local processes to run on (same results as one)")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786",
                   help="run on this Dask cluster's workers instead (pip install 'kafkaproof[cluster]'; same results)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kafkaproof", formatter_class=_HelpFormatter,
        description="A Kafka-compatible broker and a kit that proves, breaks and explains "
        "Kafka's delivery guarantees.",
    )
    parser.add_argument("--version", action="version", version=f"kafkaproof {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser = functools.partial(sub.add_parser, formatter_class=_HelpFormatter)

    p = sub.add_parser("dump-log", help="print the batches of a segment file or partition directory")
    p.add_argument("path", help="a .log segment file or a partition directory")
    p.add_argument("--records", action="store_true", help="print every record too")
    p.set_defaults(func=_dump_log)

    p = sub.add_parser("explore", help="explore every state of a model (replication, producer, group,"
                                       " transactions) within bounds")
    p.add_argument("--model", choices=["replication", "producer", "group", "transactions"], default="replication",
                   help="replication: leaders, ISR, HW, truncation; producer: retries, in-flight requests, "
                        "idempotence; group: a consumer group's commits, rebalances and crashes; "
                        "transactions: markers, epochs and late duplicates (KIP-890)")
    p.add_argument("--variant", choices=["legacy-hw", "kip101", "kip279", "kip320", "kip966"], default="kip320",
                   help="protocol variant: truncate to HW (pre-KIP-101), KIP-101, +KIP-279, +KIP-320 (Kafka 3.x),"
                        " +KIP-966 eligible leader replicas (Kafka 4.1's default)")
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--records", type=int, default=2)
    p.add_argument("--max-epoch", type=int, default=3)
    p.add_argument("--unclean", action="store_true", help="unclean.leader.election.enable=true")
    p.add_argument("--power-loss", action="store_true", help="replicas may lose their unflushed log tail")
    p.add_argument("--unclean-shutdowns", type=int, default=None,
                   help="at most this many restarts and power losses in a run (KIP-966 holds for"
                        " min.insync.replicas - 1)")
    p.add_argument("--min-isr", type=int, default=1, help="min.insync.replicas for acknowledged writes")
    p.add_argument("--idempotence", choices=["true", "false"], default="true",
                   help="producer model: enable.idempotence")
    p.add_argument("--max-in-flight", type=int, default=5,
                   help="producer model: max.in.flight.requests.per.connection")
    p.add_argument("--retries", type=int, default=2, help="producer model: retries the search may spend")
    p.add_argument("--sequence-breaks", type=int, default=0,
                   help="producer model: times the broker's producer state may stop matching the producer's"
                        " sequence (KIP-360: the producer bumps its epoch)")
    p.add_argument("--strategy", choices=["after", "before", "auto-async"], default="after",
                   help="group model: commit after processing, before it, or auto commit with asynchronous"
                        " processing")
    p.add_argument("--members", type=int, default=2, help="group model: consumers in the group")
    p.add_argument("--kip890", choices=["true", "false"], default="true",
                   help="transactions model: epoch bump per transaction and strict marker epochs (KIP-890)")
    p.add_argument("--transactions", type=int, default=2, help="transactions model: transactions to run")
    p.add_argument("--duplicates", type=int, default=1,
                   help="transactions model: markers that may be delivered twice, the copy late")
    p.add_argument("--invariant", action="append", default=[],
                   help="check only this invariant (repeatable), e.g. NoLoss")
    p.add_argument("--no-symmetry", action="store_true", help="do not merge states that differ by replica names")
    p.add_argument("--max-states", type=int, default=None, help="stop after this many distinct states")
    p.add_argument("--states", action="store_true", help="print the state after every step of a trace")
    _executor_arguments(p)  # (the frontier, sharded: the same figures and trace)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_explore)

    p = sub.add_parser("verify", help="prove (bounded) or refute each guarantee of a configuration with z3;"
                                      " --synthesize: the cheapest configuration that proves them")
    _setup_arguments(p)
    p.add_argument("--guarantee", help="comma-separated (default: all): durability, read-your-writes,"
                                       " monotonic-reads, exactly-once, partition-order, consumer-no-loss,"
                                       " consumer-no-duplicates, no-aborted-reads, availability")
    p.add_argument("--max-failures", type=int, default=1, help="brokers down at once (default 1)")
    p.add_argument("--bound", type=int, default=10, help="steps per run the proof covers (default 10)")
    p.add_argument("--brokers", type=int, default=3)
    p.add_argument("--timeout", type=float, default=60, help="solver seconds per guarantee before UNKNOWN")
    p.add_argument("--synthesize", action="store_true",
                   help="instead: the cheapest configuration that proves --guarantee and availability")
    p.add_argument("--allow-fsync", action="store_true",
                   help="synthesis may choose log.flush.interval.messages=1 (Kafka's design: never fsync)")
    p.add_argument("--no-confirm", action="store_true", help="do not replay violations on the implementation")
    p.add_argument("--out", default="counterexamples", help="where confirmed violations are saved")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_verify)

    p = sub.add_parser("guarantees", help="run every named configuration through random faults; print the table")
    p.add_argument("--examples", type=int, default=20, help="Hypothesis runs per configuration")
    p.add_argument("--transactions", action="store_true",
                   help="transactions and exactly-once processing, with and without KIP-890")
    p.add_argument("--groups", action="store_true",
                   help="consumer groups: one row per commit strategy instead of per broker/producer configuration")
    p.add_argument("--agreement", action="store_true",
                   help="verify, check and the campaign on the same questions (Kafka 4 defaults, the eight"
                        " practices, each unsafe choice; crashes, and crashes with power losses), as markdown;"
                        " exit 1 if one contradicts another")
    p.add_argument("--unsafe", action="store_true",
                   help="each unsafe choice of the eight practices alone on Kafka 4's defaults: check, verify and"
                        " hunt on the guarantee it breaks, as markdown; exit 1 unless all three find each")
    p.add_argument("--safe", action="store_true",
                   help="the eight practices through check's runs under the failure model verify proves them in,"
                        " with every danger event's count; exit 1 if a run breaks what verify proves")
    p.add_argument("--runs", type=int, help="with --agreement: check's runs per cell (8); with --unsafe: per"
                                             " choice (20, check's default); with --safe: 200")
    p.add_argument("--budget", type=float, default=60, help="with --unsafe: hunt's wall seconds per choice")
    _executor_arguments(p)
    p.add_argument("--json", action="store_true")
    _report_arguments(p)
    p.set_defaults(func=_guarantees)

    p = sub.add_parser("check", help="random fault runs on the simulated cluster with your configuration;"
                                      " which guarantees held")
    _setup_arguments(p)
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0, help="first seed; run i uses seed + i")
    _executor_arguments(p)
    p.add_argument("--out", default="counterexamples", help="where to save counterexamples")
    p.add_argument("--no-save", action="store_true", help="do not save counterexamples")
    p.add_argument("--no-verify", action="store_true",
                   help="do not show verify's verdict on the same question beside each guarantee")
    p.add_argument("--json", action="store_true")
    _report_arguments(p)
    p.set_defaults(func=_check)

    p = sub.add_parser("hunt", help="search for a violation of one guarantee, shrink it, save it")
    p.add_argument("--guarantee", required=True,
                   help="durability, delivery, exactly-once, read-your-writes, monotonic-reads, partition-order;"
                        " with --commit-strategy also group-exclusivity, committed-offsets, consumer-no-loss,"
                        " consumer-no-duplicates")
    _setup_arguments(p)
    p.add_argument("--budget", type=float, default=60, help="wall seconds to search")
    p.add_argument("--seed", type=int, default=0, help="first seed to try")
    _executor_arguments(p)
    p.add_argument("--out", default="counterexamples", help="where to save the counterexample")
    p.add_argument("--json", action="store_true")
    _report_arguments(p)
    p.set_defaults(func=_hunt)

    p = sub.add_parser("catalogue", help="hunt one shrunk counterexample per unsafe choice into counterexamples/")
    p.add_argument("--out", default="counterexamples")
    p.add_argument("--budget", type=float, default=120, help="wall seconds to search, per entry")
    p.add_argument("--only", action="append", default=[], help="just these entries (comma-separated, or repeated)")
    _executor_arguments(p)
    p.set_defaults(func=_catalogue)

    p = sub.add_parser("replay", help="re-execute a counterexample file and show its timeline")
    p.add_argument("file")
    p.add_argument("--html", help="also write the space-time diagram here: one interactive, self-contained HTML file"
                   " (lanes, message arrows, faults, offsets, the replicas' state under the pointer)")
    p.add_argument("--png", help="also write the diagram as a PNG picture here (the window that matters)")
    p.add_argument("--svg", help="also write the diagram as a static SVG here")
    p.set_defaults(func=_replay)

    p = sub.add_parser("gallery", help="replay counterexample files and draw each as an interactive HTML diagram"
                       " and a PNG preview (docs/gallery is made so)")
    p.add_argument("files", nargs="*", help="counterexample files (default: every one in counterexamples/)")
    p.add_argument("--out", default="docs/gallery")
    p.set_defaults(func=_gallery)

    p = sub.add_parser("analyse", help="judge a Kafka workload history alone, as Jepsen does (history.edn,"
                       " .jsonl, or a counterexample's history)")
    from kafkaproof import analyse
    analyse.add_arguments(p)
    p.set_defaults(func=analyse.run)

    p = sub.add_parser("test", help="Jepsen's Kafka workload over the wire against a cluster (started here or"
                       " yours), with faults, judged from the history alone")
    from kafkaproof import wire
    wire.add_arguments(p)
    p.set_defaults(func=wire.run)

    p = sub.add_parser("serve", help="run the brokers on localhost for real Kafka clients (kcat, kafka-python, ...)")
    from kafkaproof import serve
    serve.add_arguments(p)
    p.set_defaults(func=serve.run)

    p = sub.add_parser("demo", help="show what one broker's log keeps through crashes")
    p.set_defaults(func=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    from kafkaproof.executors import ExecutorError, opened

    args = build_parser().parse_args(argv)
    try:
        if not hasattr(args, "jobs"):
            return args.func(args)
        if args.jobs < 1:
            print(f"kafkaproof {args.command}: --jobs must be at least 1", file=sys.stderr)
            return 2
        # One executor for the whole command: every run it makes goes through it.
        with opened(args.scheduler, args.jobs) as args.executor:
            return args.func(args)
    except ExecutorError as exc:
        print(f"kafkaproof {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `kafkaproof ... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
