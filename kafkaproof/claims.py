"""What a configuration is expected to keep under a failure model: derived from the
verifier (kafkaproof/verify.py, z3 over model/symbolic.py), never listed by hand.

`check`'s "expected" column, the campaigns' assertions, the README's agreement table and
tests/test_agreement.py all read `claims`. A guarantee no model reads is UNKNOWN with
the reason, never a claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from kafkaproof.impl.engine import Setup
from kafkaproof.impl.sim.faults import FailureModel
from kafkaproof.verify import PROVED, UNKNOWN, VIOLATED, check, failure_model, values_of

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

    def as_json(self) -> dict:
        return {"status": self.status, "why": self.why, "failure_model": self.failure_model.as_json()}


def claims(setup: Setup, guarantees, failures: int = 1) -> dict[str, Claim]:
    """For each guarantee: what the verifier says of `setup` under its failure model
    (the setup's fault kinds, `failures` brokers down at once)."""
    model = failure_model(setup, failures)
    values = tuple(sorted(values_of(setup).items()))
    out = {}
    for g in guarantees:
        judge = JUDGED_BY.get(g)
        if judge is None:
            out[g] = Claim(g, UNKNOWN, "no model reads it", model)
            continue
        status, proof = _verdict(judge, values, model.power_loss, failures)
        out[g] = Claim(g, status, proof, model)
    return out


@lru_cache(maxsize=512)
def _verdict(guarantee: str, values: tuple, power_loss: bool, failures: int) -> tuple[str, str]:
    v = check(guarantee, dict(values), failures=failures, power_loss=power_loss)
    return v.status, v.proof


def must_hold(claimed: dict[str, Claim]) -> tuple[str, ...]:
    return tuple(g for g, c in claimed.items() if c.status == PROVED)


def campaign_setup(row) -> Setup:
    """The setup a campaign row (impl/sim/campaign.py's Row) runs: its settings over the
    campaign's shorter timeouts, its fault kinds."""
    from kafkaproof.impl.sim.campaign import COMMON_BROKER, COMMON_PRODUCER

    return Setup(broker={**COMMON_BROKER, **row.broker}, producer={**COMMON_PRODUCER, **row.producer},
                 faults=tuple(row.faults))


__all__ = ["JUDGED_BY", "PROVED", "UNKNOWN", "VIOLATED", "Claim", "campaign_setup", "claims", "must_hold"]
