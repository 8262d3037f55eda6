"""The cluster campaign (impl/engine/campaign.py): Hypothesis draws fault schedules for the
engine's run. What the verifier proves for a configuration (kafkaproof/claims.py) must
never fail; each unsafe configuration must be caught breaking a guarantee the verifier
says it gives up, within a fixed budget; faults must really happen."""

import pytest
from hypothesis import settings
from kafkaproof.impl.engine.campaign import CONFIGS, FAULTS, campaign
from kafkaproof.impl.sim.faults import covered
from kafkaproof.properties import CLUSTER_GUARANTEES

from kafkaproof.claims import VIOLATED, claims, must_hold


def claimed(config):
    return claims(CONFIGS[config].setup(), CLUSTER_GUARANTEES)


@pytest.mark.parametrize("config", ["safe", "safe-fsync", "safe+power-loss"])
def test_safe_configurations_hold_every_guarantee(config):
    proved = must_hold(claimed(config))
    assert {"durability", "exactly-once", "read-your-writes", "monotonic-reads", "partition-order"} <= set(proved)
    stats = campaign(config, CONFIGS[config], max(settings().max_examples // 3, 20), proved)
    kinds = [k for k in stats if k.startswith("fault:")]
    # Every run injects a fault (schedules are never empty) and the runs together many kinds.
    assert sum(stats[k] for k in kinds) >= stats["runs"] >= 20, f"too few faults to mean anything: {dict(stats)}"
    assert len(kinds) >= 6 and set(kinds) <= {f"fault:{k}" for k in covered(FAULTS)}, dict(stats)
    if config != "safe":
        assert stats["fault:power"] > 0, f"{config} must be shown surviving power loss"


@pytest.mark.parametrize("config", ["acks=1", "acks=0", "unclean", "no-idempotence", "safe+power-loss-3.x"])
def test_unsafe_configuration_is_caught(config):
    """Steered by verify's breaking schedules where it has them (kafkaproof/guided.py)."""
    from kafkaproof.guided import templates

    said = claimed(config)
    gives_up = [g for g, c in said.items() if c.status == VIOLATED]
    assert gives_up, f"{config}: the verifier claims nothing breaks"
    stats = campaign(config, CONFIGS[config], 12, templates=templates(said, CONFIGS[config].faults))
    caught = [g for g in gives_up if stats[f"violated:{g}"]]
    assert caught, f"{config}: none of {gives_up} broken in the budget; saw {dict(stats)}"
