"""Issue 18's agreement: Jepsen's analysis from the history alone against the
simulator's oracle checkers (which read the final logs), on the catalogue's
counterexamples and on random runs, each run again with Jepsen's final read.

The rule: where the oracle finds lost-write, the history shows lost-write or unseen;
where the oracle finds no data anomaly, the history shows no anomaly Kafka forbids.
Runs the history does not carry over (transactions: from_history reads sends, polls and
group assignments, not transactions' micro-operations) are listed as not comparable, not
counted as agreeing.

    python -m kafkaproof.history_agreement --runs 500 --jobs 2
"""

from __future__ import annotations

import argparse
from dataclasses import replace

# The oracle's data anomalies (failed-send and unavailable are about availability, which
# the history-only analysis does not judge).
DATA = frozenset({"lost-write", "inconsistent-offsets", "duplicate", "nonmonotonic-poll", "poll-skip",
                  "nonmonotonic-send", "read-your-writes"})
RANDOM = [  # (configuration, faults): safe and unsafe alike
    (["min.insync.replicas=2", "log.flush.interval.messages=1"], "crash,power,partition,drop"),
    ([], "crash,partition,drop"),
    (["acks=1"], "crash,power,partition,drop"),
    (["unclean.leader.election.enable=true", "min.insync.replicas=1"], "crash,partition,drop"),
    (["enable.idempotence=false"], "drop,duplicate,partition"),
]


def comparable(setup) -> bool:
    return "transactional.id" not in setup.producer


def judge(setup, result) -> dict:
    """One run: the oracle's data anomalies, the analysis's, and whether they agree."""
    from kafkaproof.properties.jepsen_kafka import analysis, from_history

    oracle = sorted({v["name"] for vs in result.violations.values() for v in vs} & DATA)
    found = analysis(from_history(result.history), final_read=True)
    row = {"oracle": oracle, "history": sorted(found.errors), "bad": found.bad}
    if not comparable(setup):
        row["verdict"] = "not comparable"
    elif "lost-write" in oracle and not {"lost-write", "unseen"} & set(found.errors):
        row["verdict"] = "disagree: the oracle's lost write is neither lost-write nor unseen in the history"
    elif not oracle and found.bad:
        row["verdict"] = f"disagree: the history shows {', '.join(found.bad)} where the oracle finds nothing"
    else:
        row["verdict"] = "agree"
    return row


def work(runs: int, catalogue: bool = True) -> list[tuple[str, object, int]]:
    """(label, setup with the final read, seed): the catalogue's saved runs, then `runs`
    random ones over RANDOM's configurations."""
    from kafkaproof.counterexample import load
    from kafkaproof.impl.engine import build_setup

    out = []
    if catalogue:
        import glob

        for path in sorted(glob.glob("counterexamples/*.json")):
            setup, seed, _, _ = load(path)
            out.append((path.split("/")[-1].split("--")[0], replace(setup, final_read=True), seed))
    for i in range(runs):
        sets, faults = RANDOM[i % len(RANDOM)]
        out.append((" ".join(sets) or "defaults", replace(build_setup(sets=sets, faults=faults), final_read=True),
                    i // len(RANDOM)))
    return out


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from kafkaproof.executors import opened
    from kafkaproof.impl.engine.executors import run_many

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--no-catalogue", action="store_true")
    args = ap.parse_args(argv)
    items = work(args.runs, not args.no_catalogue)
    with opened(None, args.jobs) as executor:
        results = run_many([(setup, seed) for _, setup, seed in items], executor=executor, keep_history=True)
    rows = [(label, seed, judge(setup, r)) for (label, setup, seed), r in zip(items, results, strict=True)]
    tally: dict[str, int] = {}
    for _, _, row in rows:
        key = row["verdict"].split(":")[0]
        tally[key] = tally.get(key, 0) + 1
    table = Table(title=f"history alone vs oracle: {len(rows)} runs")
    for col in ("run", "seed", "oracle", "history alone", "verdict"):
        table.add_column(col)
    for label, seed, row in rows:
        if row["verdict"] != "agree" or row["oracle"]:
            table.add_row(label, str(seed), ", ".join(row["oracle"]) or "-", ", ".join(row["history"]) or "-",
                          row["verdict"])
    Console(width=160).print(table)
    print(", ".join(f"{k}: {v}" for k, v in sorted(tally.items())))
    judged = [row for _, _, row in rows if row["verdict"] != "not comparable"]
    lost = [row for row in judged if "lost-write" in row["oracle"]]
    print(f"oracle lost-write in {len(lost)} runs: the history alone lost-write in"
          f" {sum('lost-write' in r['history'] for r in lost)}, only unseen in"
          f" {sum('lost-write' not in r['history'] and 'unseen' in r['history'] for r in lost)};"
          f" oracle clean in {sum(not r['oracle'] for r in judged)} runs: the history alone clean (nothing"
          f" forbidden) in {sum(not r['oracle'] and not r['bad'] for r in judged)}")
    return 1 if tally.get("disagree") else 0


if __name__ == "__main__":
    raise SystemExit(main())
