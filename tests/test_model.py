"""The reference model and its explorer: each variant's verdict within small bounds,
a mutation the explorer must catch, and agreement with impl/ on shared rules."""

import json
import random
import subprocess
import sys

import pytest
from kafkaproof.impl.storage import SimDisk
from kafkaproof.impl.storage.epoch_cache import LeaderEpochCache
from kafkaproof.model.explore import explore, restrict
from kafkaproof.model.replication import Bounds, Model, end_offset_for

SMALL = Bounds(replicas=2, records=2, max_epoch=3)


@pytest.mark.parametrize("variant, steps", [("legacy-hw", 6), ("kip101", 7), ("kip279", 7)])
def test_older_variants_lose_acknowledged_records(variant, steps):
    result = explore(Model(variant, SMALL), symmetry=True)
    assert result.invariant == "StrongIsr" and len(result.trace) - 1 == steps
    assert result.trace[0][0] == "Init"
    assert "lacks acknowledged record" in result.detail


def test_kip320_holds_within_the_bound():
    result = explore(Model("kip320", SMALL), symmetry=True)
    assert result.holds and result.complete
    assert result.distinct > 15_000 and result.depth >= 15


def test_kip320_with_three_replicas_holds_on_a_smaller_bound():
    result = explore(Model("kip320", Bounds(replicas=3, records=1, max_epoch=2)), symmetry=True)
    assert result.holds and result.distinct > 1000


def test_legacy_hw_is_found_with_three_replicas_too():
    result = explore(Model("legacy-hw", Bounds(3, 2, 3)), symmetry=True)
    assert result.invariant == "StrongIsr"


def test_power_loss_of_the_last_isr_member_breaks_kip320_kip966():
    """The model agrees with the implementation's campaign (test_scenarios.py::
    test_last_isr_member_loses_power...): with no fsync, min.insync.replicas=2 does not
    save acknowledged writes when the last ISR member loses power and is re-elected."""
    result = explore(Model("kip320", Bounds(2, 1, 2, power_loss=True, min_isr=2)), symmetry=True)
    assert result.invariant in ("StrongIsr", "LeaderCompleteness")
    actions = [a for a, _ in result.trace]
    assert any(a.startswith("PowerLoss") for a in actions) and any(a.startswith("BecomeLeader") for a in actions)
    assert explore(Model("kip320", Bounds(2, 1, 2, power_loss=False, min_isr=2)), symmetry=True).holds


def test_unclean_election_breaks_leader_completeness_even_with_kip320():
    result = explore(Model("kip320", Bounds(2, 1, 2, unclean=True)), symmetry=True)
    assert result.invariant in ("StrongIsr", "LeaderCompleteness")
    assert any(a.startswith("ControllerElectLeader") for a, _ in result.trace)


def test_symmetry_reduction_keeps_the_verdict_and_saves_states():
    plain = explore(Model("kip320", Bounds(2, 1, 2)))
    reduced = explore(Model("kip320", Bounds(2, 1, 2)), symmetry=True)
    assert plain.holds and reduced.holds and reduced.distinct < plain.distinct


def test_the_canonical_state_is_one_per_renaming_of_the_replicas():
    """Model.canonical (ordering replicas by what no renaming changes) picks one state per
    orbit: the same for every renaming of a state, itself a renaming of it - checked on
    every state of a three-replica exploration, ties (replicas alike) included."""
    import itertools

    from kafkaproof.model.replication import NONE, Replica, State

    def renamed(s, p):  # replica r becomes p[r]
        ren = lambda x: p[x] if x != NONE else NONE  # noqa: E731
        reps = [None] * len(p)
        for r, rep in enumerate(s.replicas):
            reps[p[r]] = Replica(rep.log, rep.hw, rep.epoch, ren(rep.leader), tuple(sorted(map(ren, rep.isr))),
                                 rep.epochs)
        return State(tuple(reps), s.q_epoch, ren(s.q_leader), tuple(sorted(map(ren, s.q_isr))), s.next_id,
                     s.committed)

    model = Model("kip320", Bounds(3, 1, 1))
    perms = list(itertools.permutations(range(3)))
    seen, todo, ties = set(), [model.initial()], 0
    while todo:
        s = todo.pop()
        if s in seen:
            continue
        seen.add(s)
        c = model.canonical(s)
        assert c in {renamed(s, p) for p in perms}
        assert all(model.canonical(renamed(s, p)) == c for p in perms)
        ties += len({rep.log for rep in s.replicas}) < 3
        todo.extend(nxt for _, nxt in model.actions(s))
    assert len(seen) > 1000 and ties > 100


def test_mutation_hw_from_the_leader_alone_is_caught(monkeypatch):
    """Break LeaderIncHighWatermark (HW := leader's log end, ignoring the ISR): the
    explorer, which says kip320 holds, must now find a violation."""
    def broken(self, s, ldr):
        lead = s.replicas[ldr]
        if self.believes_leader(s, ldr) and len(lead.log) > lead.hw:
            committed = tuple(sorted(set(s.committed) | {(o, lead.log[o][0]) for o in range(lead.hw, len(lead.log))}))
            new = s._replace(replicas=s.replicas[:ldr] + (lead._replace(hw=len(lead.log)),) + s.replicas[ldr + 1:],
                             committed=committed)
            yield f"LeaderIncHighWatermark({ldr})", new

    monkeypatch.setattr(Model, "leader_inc_high_watermark", broken)
    # A write counted committed before every ISR member has it: the ISR is no longer
    # strong (some member lacks a committed record).
    assert explore(Model("kip320", SMALL), symmetry=True).invariant == "StrongIsr"


def test_mutation_follower_skips_truncation_is_caught(monkeypatch):
    monkeypatch.setattr(Model, "reconcile", lambda self, rep, lead: rep)
    result = explore(Model("kip320", SMALL), symmetry=True)
    assert result.invariant == "StrongIsr"  # a stale follower rejoins the ISR with a divergent log


def test_model_and_impl_answer_offsets_for_leader_epoch_alike():
    rng = random.Random(0)
    for _ in range(300):
        starts = sorted(rng.sample(range(20), rng.randint(0, 5)))
        epochs = tuple(zip(sorted(rng.sample(range(10), len(starts))), starts, strict=True))
        disk = SimDisk()
        disk.mkdirs("p")
        cache = LeaderEpochCache(disk, "p")
        for e, o in epochs:
            cache.assign(e, o)
        leo = 25
        for requested in range(-1, 11):
            assert cache.end_offset_for(requested, leo) == end_offset_for(tuple(cache.entries), requested, leo)


def test_explore_cli_exit_codes_and_json():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "kafkaproof.cli", "explore", *args],
                              capture_output=True, text=True)

    bad = run("--variant", "legacy-hw", "--replicas", "2")
    assert bad.returncode == 1 and "VIOLATED StrongIsr" in bad.stdout and "  1. " in bad.stdout
    good = run("--variant", "kip320", "--replicas", "2", "--records", "1", "--json")
    assert good.returncode == 0
    summary = json.loads(good.stdout)
    assert summary["holds"] and summary["distinct_states"] > 0 and summary["complete"]
    cut = run("--variant", "kip320", "--replicas", "2", "--max-states", "50")
    assert cut.returncode == 3 and "nothing is proved" in cut.stdout
    assert run("--replicas", "9").returncode == 2
    assert run("--variant", "kip999").returncode == 2


# -- the producer model: retries, in-flight requests, idempotence ---------------------------

from kafkaproof.model.producer import ProducerBounds, ProducerModel  # noqa: E402


def test_retries_without_idempotence_duplicate_after_a_lost_answer():
    result = explore(ProducerModel(ProducerBounds(records=2, idempotence=False, max_in_flight=1, retries=1)))
    assert result.invariant == "NoDuplicates"
    assert [a for a, _ in result.trace] == ["Init", "Send(record 0)", "BrokerAppends(record 0), answer lost",
                                            "ProducerRetries(record 0)", "BrokerAppends(record 0)"]


def test_two_requests_in_flight_without_idempotence_reorder_on_a_retry():
    result = explore(restrict(ProducerModel(ProducerBounds(records=2, idempotence=False, max_in_flight=2, retries=1)),
                             ["SendOrder"]))
    assert result.invariant == "SendOrder" and "[1, 0]" in result.detail


def test_one_request_in_flight_keeps_order_even_without_idempotence():
    result = explore(restrict(ProducerModel(ProducerBounds(records=3, idempotence=False, max_in_flight=1, retries=2)),
                             ["SendOrder"]))
    assert result.holds and result.complete and result.distinct > 20


@pytest.mark.parametrize("in_flight", [1, 2, 5])
def test_idempotence_keeps_order_and_removes_duplicates_up_to_five_in_flight(in_flight):
    result = explore(ProducerModel(ProducerBounds(records=4, idempotence=True, max_in_flight=in_flight, retries=3)))
    assert result.holds and result.complete and result.distinct > 100


def test_idempotence_without_dedupe_is_caught():
    """Mutation: the broker appends a sequence it already has."""
    class NoDedupe(ProducerModel):
        def broker_handle(self, s):
            for action, nxt in super().broker_handle(s):
                if action.startswith("BrokerDeduplicates"):
                    action, nxt = action.replace("Deduplicates", "Appends"), nxt._replace(log=nxt.log + (s.wire[0][0],))
                yield action, nxt

    result = explore(NoDedupe(ProducerBounds(records=2, idempotence=True, max_in_flight=1, retries=1)))
    assert result.invariant == "NoDuplicates"


@pytest.mark.parametrize("in_flight", [1, 2, 5])
def test_kip360_a_broken_sequence_bumps_the_epoch_with_no_duplicate_and_no_gap(in_flight):
    """KIP-360: the broker's producer state stops matching the producer's sequence; the
    producer fails the refused batch, bumps its epoch once nothing is in flight and goes on
    writing - every invariant holds (no duplicate, send order, nothing acknowledged missing),
    and the search does reach a bumped producer whose later records are written."""
    bounds = ProducerBounds(records=3, idempotence=True, max_in_flight=in_flight, retries=2, sequence_breaks=1)
    result = explore(ProducerModel(bounds))
    assert result.holds and result.complete

    class Recovered(ProducerModel):  # "a record sent after the bump is acknowledged" as a violation to find
        def invariants(self, s):
            return [("Recovered", "")] if s.epoch > 0 and any(rid >= s.base for rid in s.acked) else []

    trace = [a for a, _ in explore(Recovered(bounds)).trace]
    assert {"BrokerSequenceBroken", "ProducerBumpsEpoch(to 1)"} <= set(trace)
    assert any(a.startswith("ProducerFails") for a in trace) and trace[-1].startswith("ProducerAcked")


def test_kip360_without_a_new_epoch_loses_acknowledged_records():
    """Mutation: sequences start again from 0 in the *same* epoch. The broker takes the new
    records for duplicates of the old ones and answers them ok, unwritten."""
    class SameEpoch(ProducerModel):
        def producer_bumps_epoch(self, s):
            for action, nxt in super().producer_bumps_epoch(s):
                yield action, nxt._replace(epoch=s.epoch)

    result = explore(SameEpoch(ProducerBounds(records=3, idempotence=True, max_in_flight=1, retries=1,
                                              sequence_breaks=1)))
    assert result.invariant == "AckedInLog"


def test_idempotence_with_six_in_flight_is_refused_as_kafka_refuses_it():
    with pytest.raises(ValueError, match="<= 5"):
        ProducerModel(ProducerBounds(idempotence=True, max_in_flight=6))


def test_cli_explores_the_producer_model():
    out = subprocess.run([sys.executable, "-m", "kafkaproof", "explore", "--model", "producer", "--idempotence",
                          "false", "--max-in-flight", "1", "--json"], capture_output=True, text=True)
    assert out.returncode == 1
    assert json.loads(out.stdout)["invariant"] == "NoDuplicates"
    out = subprocess.run([sys.executable, "-m", "kafkaproof", "explore", "--model", "producer"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and "every invariant holds (NoDuplicates, SendOrder, AckedInLog)" in out.stdout


# -- the consumer group model: commits, rebalances, crashes, zombies ------------------------

from kafkaproof.model.groups import GroupBounds, GroupModel  # noqa: E402


@pytest.mark.parametrize("strategy, holds, breaks", [
    ("after", "NoLoss", "NoDuplicates"),  # at-least-once
    ("before", "NoDuplicates", "NoLoss"),  # at-most-once
])
def test_each_commit_strategy_keeps_one_guarantee_and_breaks_the_other(strategy, holds, breaks):
    bounds = GroupBounds(records=3, members=3, max_generation=3)
    kept = explore(restrict(GroupModel(strategy, bounds), [holds]))
    assert kept.holds and kept.complete and kept.distinct > 1000
    assert explore(restrict(GroupModel(strategy, bounds), [breaks])).invariant == breaks


def test_auto_commit_with_asynchronous_processing_loses_records():
    result = explore(restrict(GroupModel("auto-async"), ["NoLoss"]))
    assert result.invariant == "NoLoss"
    assert [a.split("(")[0] for a, _ in result.trace] == ["Init", "Rebalance", "Poll", "Poll", "Crash"]


def test_without_generation_fencing_a_zombie_commit_breaks_at_most_once():
    """Mutation: the coordinator accepts commits from any generation. A zombie (the owner
    before a rebalance) moves the committed offset back under the new owner's feet, and
    at-most-once processes a record twice."""
    class NoFencing(GroupModel):
        @staticmethod
        def accepts(s, mb):
            return True

    bounds = GroupBounds(records=3, members=2)
    assert explore(restrict(GroupModel("before", bounds), ["NoDuplicates"])).holds
    result = explore(restrict(NoFencing("before", bounds), ["NoDuplicates"]))
    assert result.invariant == "NoDuplicates"


def test_cli_explores_the_group_model():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "kafkaproof", "explore", "--model", "group", *args],
                              capture_output=True, text=True)

    out = run("--strategy", "before")
    assert out.returncode == 1 and "VIOLATED NoLoss" in out.stdout
    out = run("--strategy", "after", "--invariant", "NoLoss")
    assert out.returncode == 0 and "every invariant holds (NoLoss)" in out.stdout
    assert run("--invariant", "StrongIsr").returncode == 2


# -- KIP-966: eligible leader replicas --------------------------------------------------------

POWER = dict(power_loss=True, min_isr=2)


@pytest.mark.parametrize("replicas", [2, 3])
def test_elr_keeps_acknowledged_writes_where_kip320_loses_them(replicas):
    """The last replica standing: kip320 re-elects a leader that lost power with the only copy;
    kip966 holds every property of the KIP-966 TLA+ specification through one unclean
    shutdown, a power loss or a restart (min.insync.replicas - 1), on the same bounds."""
    bounds = Bounds(replicas, 1, 2, unclean_shutdowns=1, **POWER)
    lost = explore(Model("kip320", bounds), symmetry=True)
    assert lost.invariant in ("StrongIsr", "LeaderCompleteness")
    assert any(a.startswith("PowerLoss") for a, _ in lost.trace)
    kept = explore(Model("kip966", bounds), symmetry=True)
    assert kept.holds and kept.complete
    assert kept.distinct > 500 and kept.depth > 10  # (a search that reached power losses, not a trivial one)


def test_elr_cannot_outlive_min_isr_unclean_shutdowns():
    """kip_966_properties.tla: NoCommittedRecordLostGlobally fails once as many replicas
    as min.insync.replicas lose power. The leader properties fail too: with ISR and ELR
    empty, Kafka 4 elects the last known leader, uncleanly, whatever it lost."""
    result = explore(Model("kip966", Bounds(3, 1, 2, **POWER)), symmetry=True)
    assert result.invariant == "NoCommittedRecordLostGlobally"
    assert sum(a.startswith("PowerLoss") for a, _ in result.trace) == 2
    leaders = explore(restrict(Model("kip966", Bounds(3, 1, 2, unclean_shutdowns=2, **POWER)),
                               {"StrongIsr", "LeaderCompleteness", "LeaderCandidateCompleteness"}), symmetry=True)
    assert leaders.invariant in ("StrongIsr", "LeaderCompleteness")
    (elected, after), = [(a, s) for a, s in leaders.trace if a.startswith("ControllerElectLeader")][-1:]
    assert after.q_elr == () and after.q_isr == (after.q_leader,)  # the unclean election of the last leader


def _quorum_state(isr, elr, leader=0):
    from kafkaproof.model.replication import NONE, Replica, State

    reps = tuple(Replica(((0, 0),), 1, 1, NONE, (), ((0, 0),)) for _ in range(3))
    return State(reps, 1, leader, isr, 1, ((0, 0),), elr)


def test_elr_election_order_is_isr_then_elr_then_the_last_known_leader_then_anyone_only_if_unclean():
    model = Model("kip966", Bounds(3, 1, 3, min_isr=2))
    elected = lambda m, s: {a for a, _ in m.controller_elect_leader(s)}  # noqa: E731
    assert elected(model, _quorum_state((2,), (1,))) == {"ControllerElectLeader(2)"}
    assert elected(model, _quorum_state((), (1,))) == {"ControllerElectLeader(1)"}
    # ISR and ELR empty: the last known leader (q_leader, restarted), uncleanly - unasked
    assert elected(model, _quorum_state((), ())) == {"ControllerElectLeader(0)"}
    (_, after), = model.controller_elect_leader(_quorum_state((), ()))
    assert (after.q_isr, after.q_elr) == ((0,), ())
    assert elected(model, _quorum_state((1,), ())) == {"ControllerElectLeader(1)"}
    unclean = Model("kip966", Bounds(3, 1, 3, min_isr=2, unclean=True))
    assert elected(unclean, _quorum_state((), ())) == {f"ControllerElectLeader({n})" for n in range(3)}
    (_, after), = [x for x in model.controller_elect_leader(_quorum_state((), (1, 2))) if "(1)" in x[0]]
    assert after.q_isr == (1,) and after.q_elr == (2,)


def test_strict_min_isr_and_elr_membership_follow_the_isr_size():
    model = Model("kip966", Bounds(3, 1, 3, min_isr=2))
    s = _quorum_state((0, 1, 2), ())
    assert model.quorum(s, (0, 1)) == ((0, 1), ())  # at min.insync.replicas: nobody else eligible
    assert model.quorum(s, (0,)) == ((0,), (1, 2))  # below: those that left become eligible
    assert model.quorum(_quorum_state((0,), (1, 2)), (0, 1)) == ((0, 1), ())
    assert model.quorum(s, (0,), unclean=(2,)) == ((0,), (1,))  # an unclean shutdown is not eligible
    assert model.rejoined(_quorum_state((0,), (1,)), 0) == ((), (1,))  # even the last ISR member leaves
    assert Model("kip320", Bounds(3, 1, 3, min_isr=2)).rejoined(_quorum_state((0,), ()), 0) == ((0,), ())


def test_mutation_an_uncleanly_shut_down_replica_left_eligible_is_caught(monkeypatch):
    def stays_eligible(self, s, r):
        return self.quorum(s, tuple(x for x in s.q_isr if x != r))
    monkeypatch.setattr(Model, "rejoined", stays_eligible)
    result = explore(Model("kip966", Bounds(3, 1, 2, unclean_shutdowns=1, **POWER)), symmetry=True)
    assert result.invariant == "LeaderCandidateCompleteness"


def test_explore_cli_runs_kip966():
    out = subprocess.run([sys.executable, "-m", "kafkaproof.cli", "explore", "--variant", "kip966", "--power-loss",
                          "--min-isr", "2", "--unclean-shutdowns", "1", "--records", "1", "--max-epoch", "2",
                          "--replicas", "2", "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["holds"]
    bad = subprocess.run([sys.executable, "-m", "kafkaproof.cli", "explore", "--unclean-shutdowns", "-1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--unclean-shutdowns needs a count of 0 or more" in bad.stderr
