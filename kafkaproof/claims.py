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
from kafkaproof.impl.sim.faults import FailureModel
from kafkaproof.verify import (
    PROVED,
    UNKNOWN,
    VIOLATED,
    check,
    failure_model,
    to_schedule,
    values_of,
    within,
)

# The simulator's guarantee -> the verifier's guarantee that judges it (None: no model
# reads it, so nothing is claimed).
JUDGED_BY = {
    "durability": "durability", "read-your-writes": "read-your-writes", "monotonic-reads": "monotonic-reads",
    "exactly-once": "exactly-once", "partition-order": "partition-order",
    "consumer-no-loss": "consumer-no-loss", "consumer-no-duplicates": "consumer-no-duplicates",
    "availability": "availability",
    # delivery.timeout.ms against fault lengths; group membership; transactions beyond
    # aborted reads: no symbolic model has them.
    "delivery": None, "group-exclusivity": None, "committed-offsets": None,
    "transactions": None, "exactly-once-processing": None,
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

    def as_json(self) -> dict:
        return {"status": self.status, "why": self.why, "failure_model": self.failure_model.as_json()}


def claims(setup: Setup, guarantees, failures: int = 1) -> dict[str, Claim]:
    """For each guarantee: what the verifier says of `setup` under its failure model
    (the setup's fault kinds, `failures` brokers down at once)."""
    model = failure_model(setup, failures)
    values = values_of(setup)
    out = {}
    for g in guarantees:
        judge = JUDGED_BY.get(g)
        if judge is None:
            out[g] = Claim(g, UNKNOWN, "no model reads it", model)
            continue
        lag_ms = BrokerConfig.from_properties(setup.broker).replica_lag_time_max_ms
        v = within(check(judge, values, failures=failures, power_loss=model.power_loss,
                         duplicates=model.duplicates), model)
        translates = v.status == VIOLATED and v.model in ("partition", "producer")
        out[g] = Claim(g, v.status, v.proof, model, to_schedule(v, values["rf"], lag_ms) if translates else ())
    return out


def agreement(status: str, broke: list[bool]) -> str:
    """verify's verdict against runs of the same question (each engine: did it break?):
    "agree", "contradicted" (a PROVED guarantee a run broke: a bug in the model or the
    implementation), "not reached" (a VIOLATED one some engine's runs never broke: not
    evidence that it holds) or "unknown"."""
    if status == PROVED:
        return "contradicted" if any(broke) else "agree"
    if status == VIOLATED:
        return "agree" if all(broke) else "not reached"
    return "unknown"


def must_hold(claimed: dict[str, Claim]) -> tuple[str, ...]:
    return tuple(g for g, c in claimed.items() if c.status == PROVED)



__all__ = ["JUDGED_BY", "PROVED", "UNKNOWN", "VIOLATED", "Claim", "agreement", "claims", "must_hold"]
