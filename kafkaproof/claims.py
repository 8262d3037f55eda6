"""What a configuration is expected to keep under a failure model: derived from the
verifier (kafkaproof/verify.py, z3 over model/symbolic.py), never listed by hand.

`check`'s "expected" column, the campaigns' assertions, the README's agreement table and
tests/test_agreement.py all read `claims`. A guarantee no model reads is UNKNOWN with
the reason, never a claim.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.engine import Setup
from kafkaproof.impl.sim.dangers import DANGERS
from kafkaproof.impl.sim.faults import FailureModel
from kafkaproof.verify import (
    PROVED,
    UNKNOWN,
    VIOLATED,
    failure_model,
    to_schedule,
    unfenced,
    values_of,
)
from kafkaproof.verify import judge as verify_judge

# The simulator's guarantee -> the verifier's guarantee that judges it (None: no model
# reads it, so nothing is claimed).
JUDGED_BY = {
    "durability": "durability", "read-your-writes": "read-your-writes", "monotonic-reads": "monotonic-reads",
    "exactly-once": "exactly-once", "partition-order": "partition-order",
    "consumer-no-loss": "consumer-no-loss", "consumer-no-duplicates": "consumer-no-duplicates",
    "availability": "availability", "delivery": "delivery",
    "transactions": "transactions",  # the explorer of model/transactions.py
    # Group membership; an application's exactly-once processing: no model has them.
    "group-exclusivity": None, "committed-offsets": None, "exactly-once-processing": None,
}


@dataclass(frozen=True)
class Claim:
    guarantee: str
    status: str  # PROVED (must hold) | VIOLATED (can break) | UNKNOWN (nothing claimed)
    why: str
    failure_model: FailureModel
    # VIOLATED: verify's breaking schedule as a simulator schedule (laid out for the
    # configuration's replica.lag.time.max.ms), where its model's faults translate to one.
    schedule: tuple[tuple, ...] = ()
    # VIOLATED: the danger events (impl/sim/dangers.py) verify's breaking trace passes through.
    dangers: tuple[str, ...] = ()

    def as_json(self) -> dict:
        return {"status": self.status, "why": self.why, "failure_model": self.failure_model.as_json(),
                "dangers": list(self.dangers)}


# A model trace's steps -> the danger event a run passes through doing the same (z3's
# models' actions, and the explorer's for the legacy switches).
STEP_DANGERS = {"shrink-isr": "isr-shrank-to-leader", "power-loss": "power-lost-unflushed",
                "append-answer-lost": "produce-retried-after-lost-answer",
                "network-duplicate": "request-overtaken", "crash-restart": "member-crashed-mid-commit",
                "BecomeFollowerAndTruncate": "follower-truncated-committed"}
# What the end of a breaking trace is, in a run: a leader without the acknowledged record.
TRACE_END_DANGERS = {"partition": ("new-leader-missing-acked",), "explorer": ("new-leader-missing-acked",)}


def trace_dangers(guarantee: str, v) -> tuple[str, ...]:
    """The danger events a VIOLATED verdict's trace needs a run to reach."""
    out = [STEP_DANGERS[a] for a in (s.action.split("(")[0] for s in v.trace) if a in STEP_DANGERS]
    for before, step in zip(v.trace, v.trace[1:], strict=False):
        if step.action == "elect" and not before.state.get("isr", [True] * (step.target + 1))[step.target]:
            out.append("out-of-sync-elected")  # elected from outside the ISR it had
    if guarantee in ("durability", "read-your-writes", "exactly-once", "partition-order"):
        out += TRACE_END_DANGERS.get(v.model, ())
    if unfenced(v):
        out.append("stale-epoch-served")
    if v.model == "txn-explorer":
        out.append("txn-marker-late")  # a marker delivered again after the next transaction began
    if guarantee == "exactly-once" and v.model == "partition":
        out.append("produce-retried-after-lost-answer")  # derived: the record read, lost, then resent
    return tuple(dict.fromkeys(out))


# verify answers the same question the same way (each query starts from a fresh z3
# context), and a query takes seconds: a process asks it once.
_ASKED: dict[tuple, dict[str, Claim]] = {}


def claims(setup: Setup, guarantees, failures: int = 1) -> dict[str, Claim]:
    """For each guarantee: what the verifier says of `setup` under its failure model
    (the setup's fault kinds, `failures` brokers down at once)."""
    key = (repr(setup), tuple(guarantees), failures)
    if key not in _ASKED:
        _ASKED[key] = _claims(setup, guarantees, failures)
    return dict(_ASKED[key])


def _claims(setup: Setup, guarantees, failures: int) -> dict[str, Claim]:
    model = failure_model(setup, failures)
    values = values_of(setup)
    broker = BrokerConfig.from_properties(setup.broker)
    out = {}
    for g in guarantees:
        judge = JUDGED_BY.get(g)
        if judge is None:
            out[g] = Claim(g, UNKNOWN, "no model reads it", model)
            continue
        v = verify_judge(judge, setup, failures)
        translates = v.status == VIOLATED and v.model in ("partition", "producer", "explorer", "availability",
                                                                  "txn-explorer", "consumer")
        schedule = to_schedule(v, values["rf"], broker.replica_lag_time_max_ms, broker.session_timeout_ms,
                               lossy="drop" in setup.faults) if translates else ()
        out[g] = Claim(g, v.status, v.proof, model, schedule,
                       trace_dangers(g, v) if v.status == VIOLATED else ())
    return out


HELD, BROKEN, NOT_SHOWN = "HELD", "VIOLATED", "NOT SHOWN"


def verdict(row: dict, claim: Claim | None) -> tuple[str, str, str]:
    """The runs' verdict on one guarantee with its evidence, given what verify says
    (None: not asked): (HELD | VIOLATED | NOT SHOWN, a short reason, a hint or "").
    `row` is a `summarize` row (runs, violated, anomalies, reached). A "held" is NOT
    SHOWN when verify has a way to break it the runs did not show (the dangers its trace
    needs unreached, or reached without the break), or when verify proves nothing and no
    run reached any danger that threatens it."""
    reached = {d: k for d, k in row.get("reached", {}).items() if k}
    evidence = ", ".join(f"{d} {k}x" for d, k in reached.items())
    if row["violated"]:
        return BROKEN, f"{row['violated']}/{row['runs']} runs ({', '.join(row['anomalies'])})", ""
    hint = "try `kafkaproof hunt --guarantee GUARANTEE`, more --runs, or `kafkaproof verify` for the breaking schedule"
    if claim is not None and claim.status == VIOLATED:
        missing = [d for d in claim.dangers if not reached.get(d)]
        short = f"no run reached {', '.join(missing)}" if missing else "runs reached its dangers, none broke it"
        how = "".join(f"to reach {d}: {DANGERS[d].reach}; " for d in missing if d in DANGERS)
        return NOT_SHOWN, short, f"verify breaks it: {claim.why}; {how}" + hint.replace("GUARANTEE", row.get("name", "..."))
    if not row.get("reached"):
        return HELD, f"held in {row['runs']} runs (no danger events defined for it)", ""
    if not reached and (claim is None or claim.status != PROVED):
        return NOT_SHOWN, "no run reached a danger for it", \
            f"its dangers: {', '.join(row['reached'])}; " + hint.replace("GUARANTEE", row.get("name", "..."))
    if not reached:  # (verify proved it: the runs add no evidence of their own - say so)
        return HELD, f"held in {row['runs']} runs, which reached none of its dangers" \
                     f" ({', '.join(row['reached'])}): this rests on verify's proof", ""
    return HELD, f"held in {row['runs']} runs; reached: {evidence}", ""


def agreement(status: str, broke: list[bool]) -> str:
    """verify's verdict against runs of the same question (each engine: did it break?):
    "agree", "contradicted" (a PROVED guarantee a run broke: a bug in the model or the
    implementation), "not shown" (a VIOLATED one some engine's runs never broke: not
    evidence that it holds) or "unknown"."""
    if status == PROVED:
        return "contradicted" if any(broke) else "agree"
    if status == VIOLATED:
        return "agree" if all(broke) else "not shown"
    return "unknown"


def must_hold(claimed: dict[str, Claim]) -> tuple[str, ...]:
    return tuple(g for g, c in claimed.items() if c.status == PROVED)


__all__ = ["HELD", "JUDGED_BY", "NOT_SHOWN", "PROVED", "UNKNOWN", "VIOLATED", "Claim", "agreement", "claims",
           "must_hold", "verdict"]
