"""Every unsafe choice of the seed's eight practices, set alone on top of Kafka 4's
defaults, with check's default runs and faults: what `check`, `verify` and `hunt` each say
of the guarantee it breaks (`kafkaproof guarantees --unsafe` writes the README's table;
tests/test_unsafe.py runs a CI slice).

Nothing is tuned per row: no lag time, no chosen fault kinds. The failure model is the
default one (crashes and power losses without fsync) - unless the configuration
*without* the choice already breaks the guarantee there, as every replication setting
does under power loss without fsync (KIP-966's hazard). Then the row is judged under
crashes alone (disks and page caches survive), where the choice makes the difference,
and says so; "without it" is verify's verdict on the configuration without the choice
under the row's failure model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NamedTuple

from kafkaproof.claims import PROVED, UNKNOWN, VIOLATED, claims
from kafkaproof.guided import check_runs
from kafkaproof.hunt import hunt, steering
from kafkaproof.impl.engine import build_setup
from kafkaproof.impl.sim import faults as fault_kinds


class Choice(NamedTuple):
    unsafe: tuple[str, ...]  # the choice, as --set items
    guarantee: str  # what it breaks
    safe: tuple[str, ...] = ()  # the practice's value instead (default: Kafka 4's default)
    strategy: str | None = None  # a consumer application's commit strategy (the choice, for groups)
    context: tuple[str, ...] = ()  # what the question needs besides (a transactional.id)
    safe_strategy: str | None = None

    @property
    def name(self) -> str:
        return " ".join(self.unsafe) if self.unsafe else f"--commit-strategy {self.strategy}"


CHOICES = [
    Choice(("acks=1",), "durability"),
    Choice(("acks=0",), "durability"),
    Choice(("retries=0",), "delivery"),
    Choice(("unclean.leader.election.enable=true",), "durability"),
    Choice(("default.replication.factor=1",), "durability", ("default.replication.factor=3",)),
    Choice(("min.insync.replicas=1",), "durability", ("min.insync.replicas=2",)),
    Choice(("min.insync.replicas=3",), "availability", ("min.insync.replicas=2",)),
    Choice((), "consumer-no-loss", strategy="auto-async", safe_strategy="after"),
    Choice((), "consumer-no-loss", strategy="before", safe_strategy="after"),
    Choice(("enable.idempotence=false",), "exactly-once"),
    Choice(("legacy.truncate.to.high.watermark=true",), "durability"),
    Choice(("legacy.kip101.without.kip279=true",), "durability"),
    Choice(("legacy.no.fetch.epoch.fencing=true",), "durability"),
    Choice(("legacy.transactions.without.kip890=true",), "transactions", context=("transactional.id=app",)),
]

DEFAULT, CRASHES = "crashes+power", "crashes"
# The seed's eight practices (as --set items; the eighth, commit after processing, is the
# group application's strategy).
PRACTICES = ("acks=all", "retries=2147483647", "enable.idempotence=true", "unclean.leader.election.enable=false",
             "default.replication.factor=3", "min.insync.replicas=2", "enable.auto.commit=false")
SAFE_STRATEGY = "after"
# The practices as a row of their own (setup_of and failure_models serve them too).
PRACTICES_CHOICE = Choice(PRACTICES, "durability", strategy=SAFE_STRATEGY)


def failure_models(choice: Choice) -> dict[str, tuple[str, ...]]:
    kinds = fault_kinds.defaults(choice.strategy is not None, bool(choice.context))
    return {DEFAULT: kinds, CRASHES: tuple(k for k in kinds if fault_kinds.FAULTS[k].layer != "disk")}


@dataclass
class Row:
    choice: Choice
    model: str  # DEFAULT or CRASHES
    without: str  # verify's verdict without the choice, under the row's failure model
    verify: str
    check: str  # check's verdict and evidence for the guarantee
    check_verdict: str
    hunt: str
    hunt_found: bool
    seconds: float


def judge_under(choice: Choice) -> tuple[str, str]:
    """(failure model name, verify's verdict without the choice there): the first failure
    model (the default first) under which the choice changes verify's answer - the
    configuration without it PROVED there, or at least not VIOLATED while with it it is;
    the default when none does (both break it alike)."""
    without, with_ = {}, {}
    for name, kinds in failure_models(choice).items():
        faults = ",".join(kinds)
        without[name] = _said(build_setup(sets=[*choice.safe, *choice.context], faults=faults,
                                          strategy=choice.safe_strategy), choice.guarantee)
        with_[name] = _said(build_setup(sets=[*choice.unsafe, *choice.context], faults=faults,
                                        strategy=choice.strategy), choice.guarantee)
    for wanted in (PROVED, UNKNOWN):
        for name in without:
            if without[name] == wanted and with_[name] == VIOLATED:
                return name, without[name]
    return DEFAULT, without[DEFAULT]


def _said(setup, guarantee: str) -> str:
    return claims(setup, [guarantee])[guarantee].status


def setup_of(choice: Choice, model: str):
    """The choice's setup under one of its failure models - nothing tuned."""
    kinds = ",".join(failure_models(choice)[model])
    return build_setup(sets=[*choice.unsafe, *choice.context], faults=kinds, strategy=choice.strategy)


def row(choice: Choice, runs: int = 20, hunt_budget: float = 60, executor=None) -> Row:
    start = time.perf_counter()
    model, without = judge_under(choice)
    setup = setup_of(choice, model)
    said = claims(setup, [choice.guarantee])[choice.guarantee]
    rows = check_runs(setup, runs, executor=executor)[0]
    checked = rows.get(choice.guarantee)
    check_text = f"{checked['verdict']} {checked['evidence']}" if checked else "not judged"
    h = hunt(setup, choice.guarantee, hunt_budget, shrink=False, steer=steering(setup, choice.guarantee),
             executor=executor)
    runs_text = f"{h.seeds_tried} run{'s' if h.seeds_tried != 1 else ''}"
    hunt_text = (f"found in {h.seconds_spent:.1f} s ({runs_text})" if h.found
                 else f"not found in {h.seconds_spent:.0f} s ({runs_text})")
    return Row(choice, model, without, said.status, check_text, checked["verdict"] if checked else "",
               hunt_text, h.found, time.perf_counter() - start)


def found_by_all(r: Row) -> bool:
    return r.verify == VIOLATED and r.check_verdict == "VIOLATED" and r.hunt_found


def markdown(rows: list[Row], runs: int, budget: float) -> str:
    lines = ["| unsafe choice | breaks | failures | without it | verify | check | hunt |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r.choice.name}` | {r.choice.guarantee} | {r.model} | {r.without} | {r.verify} |"
                     f" {r.check} | {r.hunt} |")
    agree = sum(1 for r in rows if found_by_all(r))
    return "\n".join(lines) + (f"\n\ncheck: {runs} runs (the default); hunt: budget {budget:.0f} s, first"
                               f" counterexample, unshrunk; {agree} of {len(rows)} choices found by all three.")


def safe_campaign(runs: int, seed: int = 0, progress=None, executor=None, stats: bool = False):
    """The eight practices, run as `check` runs them, under the first failure model in
    which verify proves them durable (the default, with power losses, thanks to KIP-966's
    eligible leader replicas; under 3.x's elections only crashes: no replication setting
    survives a power loss without fsync there): (failure model name, check's rows, each
    danger event's count over all runs, the runs' results - `stats` filled when asked). A
    "held" row carries the dangers its runs reached."""
    for name in failure_models(PRACTICES_CHOICE):
        setup = setup_of(PRACTICES_CHOICE, name)
        if _said(setup, "durability") == PROVED:
            rows, _, _, results = check_runs(setup, runs, seed, progress, executor=executor, stats=stats)
            totals: dict[str, int] = {}
            for r in results:
                for danger, n in r.dangers.items():
                    totals[danger] = totals.get(danger, 0) + n
            return name, rows, dict(sorted(totals.items())), results
    raise AssertionError("verify proves the eight practices durable under no failure model")
