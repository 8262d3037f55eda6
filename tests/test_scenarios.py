"""Short deterministic runs, each asserting the outcome the seed notes predict."""

import pytest
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.scenarios import last_replica_standing
from kafkaproof.properties.durability import check_durability

TP = TopicPartition("orders", 0)


def cluster(seed=1, brokers=3, rf=3, **props):
    c = Cluster(seed=seed, brokers=brokers, broker_props={k.replace("_", "."): str(v) for k, v in props.items()})
    c.create_topic(TP.topic, 1, rf)
    return c


def final_check(c: Cluster):
    """Heal, restart everything, let replication settle, then judge the history."""
    c.heal()
    for node in sorted(c.down):
        c.restart(node)
    c.run_until(lambda: c.leader(TP) is not None, 60_000)
    c.run_for(15_000)
    return check_durability(c.history, {tuple(TP): c.committed(TP)})


def acked(c):
    return [op for op in c.history.completions("send", "ok")]


def followers_cut_off(c: Cluster) -> int:
    """Stop the followers from fetching; returns the leader."""
    leader = c.leader(TP)
    for b in c.broker_ids:
        if b != leader:
            c.cut(broker_node(b), broker_node(leader), both_ways=True, planes=("data",))
    return leader


def test_acks_1_and_a_leader_crash_before_replication_loses_an_acknowledged_write():
    c = cluster(min_insync_replicas=1)
    p = c.producer("p", {"acks": "1"})
    leader = followers_cut_off(c)
    p.send(TP.topic, b"k", b"only-on-the-leader")
    c.run_for(500)
    assert [op.value for op in acked(c)] == ["only-on-the-leader"]
    c.crash(broker_node(leader))
    c.heal()
    violations = final_check(c)
    assert [v.name for v in violations] == ["lost-write"]
    assert violations[0].ops[0].value == "only-on-the-leader"


def test_acks_all_waits_for_the_isr_and_survives_the_same_crash():
    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": "all"})
    leader = followers_cut_off(c)
    p.send(TP.topic, b"k", b"must-be-replicated")
    c.run_for(500)
    assert acked(c) == []  # in purgatory: the HW cannot pass it
    c.crash(broker_node(leader))
    c.heal()
    assert final_check(c) == []


@pytest.mark.parametrize("victim_is_leader", [True, False])
@pytest.mark.parametrize("fault", ["crash", "power_loss"])
@pytest.mark.parametrize("seed", [1, 2])
def test_acks_all_rf3_min_isr_2_survives_any_single_broker_failure(fault, victim_is_leader, seed):
    c = cluster(seed=seed, min_insync_replicas=2)
    p = c.producer("p", {"acks": "all"})
    counter = iter(range(10_000))
    c.every(20, lambda: p.send(TP.topic, b"k", b"v%d" % next(counter)), until=8_000)
    c.run_for(2_000 + seed * 137)
    leader = c.leader(TP)
    victim = leader if victim_is_leader else next(b for b in c.broker_ids if b != leader)
    if fault == "crash":
        c.crash(broker_node(victim))
    else:
        c.power_loss(victim)
    c.run_for(12_000)
    c.restart(broker_node(victim))
    violations = final_check(c)
    assert len(acked(c)) > 100
    assert violations == [], violations[:3]
    assert c.history.faults()


@pytest.mark.parametrize("crash_new_leader", [False, True])
def test_a_reassignment_under_load_loses_nothing(crash_new_leader):
    """KIP-455 under acks=all writes: the partition moves to two brokers it was not on;
    they join the ISR only once caught up, then the old replicas leave (and their logs
    go). Mutation: counting the new replicas in sync at once loses every acknowledged
    write (tests/mutations: reassignment-trusts-new-replicas)."""
    c = cluster(brokers=4, rf=2, min_insync_replicas=2)
    p = c.producer("p", {"acks": "all", "enable.idempotence": "true"})
    counter = iter(range(10_000))
    c.every(20, lambda: p.send(TP.topic, b"k", b"v%d" % next(counter)), until=10_000)
    c.run_for(3_000)
    old = c.state(TP).replicas
    target = tuple(b for b in c.broker_ids if b not in old)
    c.reassign(TP, target)
    c.run_until(lambda: c.state(TP).replicas == target and not c.state(TP).adding, 30_000)
    c.run_for(1_000)  # (StopReplica on its way)
    assert all(TP not in c.broker(b).partitions for b in old)  # the old replicas deleted their logs
    if crash_new_leader:
        c.crash(broker_node(c.leader(TP)))
        c.run_for(12_000)
    violations = final_check(c)
    assert len(acked(c)) > 100 and violations == [], violations[:3]


def test_a_reassignment_to_a_dead_broker_waits_and_can_be_cancelled():
    """A registered broker that is down is accepted as a target (Kafka checks only that
    it is registered): the move stays pending, writes go on, and a cancel puts the
    partition back as it was; after that the broker's return changes nothing."""
    c = cluster(brokers=4, rf=2, min_insync_replicas=1)
    p = c.producer("p", {"acks": "all"})
    old = c.state(TP).replicas
    dead = next(b for b in c.broker_ids if b not in old)
    c.crash(broker_node(dead))
    c.run_for(12_000)  # fenced
    c.reassign(TP, (old[0], dead))
    p.send(TP.topic, b"k", b"during")
    c.run_for(10_000)
    st = c.state(TP)
    assert st.adding == (dead,) and st.removing == (old[1],) and set(st.replicas) == {*old, dead}
    assert [op.value for op in acked(c)] == ["during"]  # the partition kept serving
    c.reassign(TP, None)
    c.run_for(1_000)
    assert (c.state(TP).replicas, c.state(TP).adding, c.state(TP).removing) == (old, (), ())
    c.restart(broker_node(dead))
    assert final_check(c) == []
    assert c.state(TP).replicas == old


@pytest.mark.parametrize("where", ["broker", "topic"])
def test_unclean_election_of_a_lagging_replica_loses_committed_writes(where):
    """The same loss whether the broker allows unclean election or only the topic does
    (a per-topic override, as CreateTopics or AlterConfigs set it)."""
    if where == "broker":
        c = cluster(brokers=2, rf=2, min_insync_replicas=1, unclean_leader_election_enable="true",
                    replica_lag_time_max_ms=2000)
    else:
        c = Cluster(seed=1, brokers=2, broker_props={"replica.lag.time.max.ms": "2000"})
        c.create_topic(TP.topic, 1, 2, configs={"unclean.leader.election.enable": "true"})
    p = c.producer("p", {"acks": "all"})
    leader = c.leader(TP)
    follower = next(b for b in c.broker_ids if b != leader)
    c.cut(broker_node(follower), broker_node(leader), both_ways=True, planes=("data",))
    c.run_for(5000)  # the follower falls out of the ISR; acks=all now means the leader alone
    assert c.state(TP).isr == (leader,)
    p.send(TP.topic, b"k", b"committed-by-the-leader-alone")
    c.run_for(500)
    assert [op.value for op in acked(c)] == ["committed-by-the-leader-alone"]
    c.crash(broker_node(leader))
    c.heal()
    c.run_until(lambda: c.leader(TP) == follower, 30_000)  # the out-of-sync replica leads
    violations = check_durability(c.history, {tuple(TP): c.committed(TP)})
    assert [v.name for v in violations] == ["lost-write"]


def test_without_unclean_election_the_same_run_waits_instead_of_losing():
    c = cluster(brokers=2, rf=2, min_insync_replicas=1, replica_lag_time_max_ms=2000)
    p = c.producer("p", {"acks": "all"})
    leader = c.leader(TP)
    follower = next(b for b in c.broker_ids if b != leader)
    c.cut(broker_node(follower), broker_node(leader), both_ways=True, planes=("data",))
    c.run_for(5000)
    p.send(TP.topic, b"k", b"committed-by-the-leader-alone")
    c.run_for(500)
    c.crash(broker_node(leader))
    c.heal()
    c.run_for(15_000)
    assert c.leader(TP) is None  # offline: no in-sync replica is alive
    assert final_check(c) == []  # the old leader comes back and leads again


def test_min_isr_3_with_a_dead_broker_makes_acks_all_unavailable_not_lossy():
    c = cluster(min_insync_replicas=3)
    p = c.producer("p", {"acks": "all", "delivery.timeout.ms": "20000", "request.timeout.ms": "5000"})
    victim = next(b for b in c.broker_ids if b != c.leader(TP))
    c.crash(broker_node(victim))
    c.run_for(12_000)  # the controller fences it; the ISR shrinks to 2
    assert len(c.state(TP).isr) == 2
    for i in range(5):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(25_000)
    fails = c.history.completions("send", "fail")
    assert acked(c) == [] and len(fails) == 5
    assert {op.error for op in fails} <= {"NOT_ENOUGH_REPLICAS", "REQUEST_TIMED_OUT"}
    assert final_check(c) == []


def _lost_response_run(idempotence: bool):
    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": "all", "enable.idempotence": str(idempotence).lower(),
                         "request.timeout.ms": "1000", "max.in.flight.requests.per.connection": "1"})
    leader = c.leader(TP)
    c.cut(broker_node(leader), p.node, planes=("data",))  # responses to the producer are lost
    p.send(TP.topic, b"k", b"sent-once")
    c.run_for(800)  # written and committed; the answer never arrives
    c.heal()
    c.run_for(5000)  # request.timeout.ms passes: the producer retries
    values = [v for _, _, v in c.committed(TP)]
    return values, acked(c)


def test_retries_without_idempotence_duplicate_after_a_lost_response():
    values, ok = _lost_response_run(idempotence=False)
    assert values.count("sent-once") == 2 and len(ok) == 1


def test_idempotence_removes_the_duplicate():
    values, ok = _lost_response_run(idempotence=True)
    assert values.count("sent-once") == 1 and len(ok) == 1


@pytest.mark.parametrize("flush_messages, lost", [(None, True), ("1", False)])
def test_power_loss_of_all_replicas_loses_acked_unfsynced_writes_even_with_acks_all(flush_messages, lost):
    props = {"min_insync_replicas": 2}
    if flush_messages:
        props["log_flush_interval_messages"] = flush_messages
    c = cluster(**props)
    p = c.producer("p", {"acks": "all"})
    for i in range(20):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(1000)
    assert len(acked(c)) == 20
    for b in c.broker_ids:
        c.power_loss(b)
    violations = final_check(c)
    assert bool(violations) == lost
    if lost:
        assert {v.name for v in violations} == {"lost-write"}


def test_mutation_hw_equal_to_leader_leo_loses_acks_all_writes(broken_hw):
    """Break HW advancement (HW = leader LEO, ignoring followers): acks=all is answered
    before replication, and the crash test above must then find the lost write."""
    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": "all"})
    leader = followers_cut_off(c)
    p.send(TP.topic, b"k", b"must-be-replicated")
    c.run_for(500)
    c.crash(broker_node(leader))
    c.heal()
    assert [v.name for v in final_check(c)] == ["lost-write"]


def test_bad_cluster_configuration_names_the_key():
    with pytest.raises(ConfigError, match="replication factor 4 is larger than the 3 brokers"):
        Cluster(seed=0).create_topic("t", 1, 4)
    with pytest.raises(ConfigError, match="min.insync.replicas=3 is larger than the replication factor 2"):
        Cluster(seed=0, broker_props={"min.insync.replicas": "3"}).create_topic("t", 1, 2)
    with pytest.raises(ConfigError, match="unknown broker configuration key 'min.isr'"):
        Cluster(seed=0, broker_props={"min.isr": "2"})


def _kip101_run(legacy: bool):
    """KIP-101's hazard: a follower that becomes follower of a new leader truncates to its
    own HW, which lags the leader's by one fetch round; if the new leader then dies, the
    truncated follower leads without a write that was acknowledged with acks=all."""
    c = cluster(min_insync_replicas=2, legacy_truncate_to_high_watermark=str(legacy).lower())
    p = c.producer("p", {"acks": "all"})
    old = c.state(TP)
    p.send(TP.topic, b"k", b"acked-by-all")
    c.run_until(lambda: acked(c), 2000)
    c.crash(broker_node(old.leader))  # before the followers learn the new HW
    successor, other = [r for r in old.replicas if r != old.leader]
    c.cut(broker_node(other), broker_node(successor), both_ways=True, planes=("data",))
    c.run_until(lambda: c.leader(TP) == successor, 20_000)
    c.run_for(1000)
    c.crash(broker_node(successor))
    c.run_until(lambda: c.leader(TP) == other, 20_000)
    return final_check(c)


def test_legacy_truncate_to_hw_loses_an_acknowledged_write():
    assert [v.name for v in _kip101_run(legacy=True)] == ["lost-write"]


def test_kip101_leader_epochs_keep_it():
    assert _kip101_run(legacy=False) == []


@pytest.mark.parametrize("flush_messages, lost", [(None, True), ("1", False)])
def test_last_isr_member_loses_power_and_is_elected_kip966(flush_messages, lost):
    """Found by the stateful campaign (impl/sim/scenarios.py). The ISR shrinks to the
    leader alone (the followers have the data but lag), the leader loses power and comes
    back with an empty log, and the controller elects it: it is the last ISR member. The
    followers truncate to it and every acknowledged write is gone, with acks=all and
    min.insync.replicas=2 - under Kafka 3.x's elections. Kafka's answer is KIP-966 (eligible
    leader replicas and unclean-shutdown detection, Kafka 4.1's default); fsyncing every message
    also closes it."""
    run = last_replica_standing({"eligible.leader.replicas.enable": "false",
                                 **({"log.flush.interval.messages": flush_messages} if flush_messages else {})})
    assert run.acked == 10
    assert run.isr == (run.leader,)  # the followers hold the data but left the ISR
    assert run.elected == run.leader  # re-elected: the last ISR member
    assert (len(run.lost) == 10) == lost and (not run.lost) == (not lost)


def test_eligible_leader_replicas_keep_the_writes_the_last_isr_member_lost_kip966():
    """The run above with KIP-966 on: when the ISR shrank below min.insync.replicas the
    followers that left became eligible (ELR); the leader loses power, registers with no
    previous broker epoch (an unclean shutdown) and leaves both ISR and ELR; a follower
    from the ELR leads, and no acknowledged write is lost. The HW stayed put while the
    ISR was below min.insync.replicas (strict min ISR)."""
    from kafkaproof.impl.protocol import messages as m

    def shrunk(c, leader):
        # Metadata answers carry the ELR (DescribeTopicPartitions' EligibleLeaderReplicas in serve).
        answer, = [fx.message for fx in c.broker(leader).handle("client-x", m.MetadataRequest(1, (TP.topic,)), c.now)
                   if isinstance(getattr(fx, "message", None), m.MetadataResponse)]
        assert answer.partitions[0].elr == c.state(TP).elr
        hw = c.broker(leader).partitions[TP].hw
        c.producer("p2", {"acks": "all"}).send(TP.topic, b"k", b"below-min-isr")  # refused: NOT_ENOUGH_REPLICAS
        c.run_for(1000)
        assert c.broker(leader).partitions[TP].hw == hw

    run = last_replica_standing({"eligible.leader.replicas.enable": "true"}, shrunk=shrunk)
    assert run.acked == 10
    assert run.isr == (run.leader,) and set(run.elr) == set(run.cluster.broker_ids) - {run.leader}
    assert run.elected not in (run.leader, -1) and run.leader not in run.cluster.state(TP).elr
    assert run.lost == []


@pytest.mark.parametrize("shutdown", ["power_loss", "crash"])
def test_a_replica_back_from_an_unclean_shutdown_is_no_longer_eligible_kip966(shutdown):
    """KAFKA-15586: the followers in the ELR shut down uncleanly - lose power, or crash (no
    clean shutdown marker either) - and register again without their previous broker
    epoch, so they leave the ELR (their unflushed tail may be gone). When the leader then
    loses power too, ISR and ELR end empty, and Kafka 4 elects the last known leader once
    it is back - uncleanly, with no setting asked (its documented election order: ISR,
    ELR, last known leader). Three unclean shutdowns with min.insync.replicas=2 are past
    KIP-966's bound, and the writes are gone - after a single power loss, when the
    followers only crashed and still hold every write: they truncate to the leader."""
    c = cluster(min_insync_replicas=2, replica_lag_time_max_ms=2000, eligible_leader_replicas_enable="true")
    p = c.producer("p", {"acks": "all"})
    for i in range(5):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(1000)
    leader = followers_cut_off(c)
    c.run_for(5000)
    followers = [b for b in c.broker_ids if b != leader]
    assert set(c.state(TP).elr) == set(followers)
    for b in followers:
        c.power_loss(b) if shutdown == "power_loss" else c.crash(broker_node(b))
        c.restart(broker_node(b))
    c.run_for(3000)
    assert c.state(TP).elr == ()  # registered after an unclean shutdown: not eligible
    c.power_loss(leader)
    c.run_for(12_000)  # past the broker session: fenced
    st = c.state(TP)
    assert (st.leader, st.isr, st.elr, st.last_known_elr) == (-1, (), (leader,), (leader,))
    c.restart(broker_node(leader))
    c.run_for(5000)
    st = c.state(TP)
    assert (st.leader, st.isr, st.elr, st.last_known_elr) == (leader, (leader,), (), ())
    assert {v.name for v in final_check(c)} == {"lost-write"}  # all five


def test_the_last_known_leader_keeps_kafkas_defaults_available_kip966():
    """min.insync.replicas=1 (Kafka's default) with ELR: the last ISR member crashes, the
    ISR empties (KIP-966 lets it) and the member waits in the ELR; a crash is an unclean
    shutdown too, so at registration it leaves the ELR, and comes back as the last known
    leader. Kafka 3.x brought it back as the last ISR member: the same leader, and a crash
    keeps the page cache, so nothing acknowledged is lost."""
    c = cluster(min_insync_replicas=1, replica_lag_time_max_ms=2000, eligible_leader_replicas_enable="true")
    p = c.producer("p", {"acks": "all"})
    leader = followers_cut_off(c)
    c.run_for(5000)
    for i in range(5):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(1000)
    assert len(acked(c)) == 5 and c.state(TP).isr == (leader,)
    c.crash(broker_node(leader))
    c.run_for(12_000)
    st = c.state(TP)
    assert (st.leader, st.isr, st.elr, st.last_known_elr) == (-1, (), (leader,), (leader,))
    c.restart(broker_node(leader))
    c.run_for(5000)
    assert c.leader(TP) == leader and c.state(TP).last_known_elr == ()
    assert final_check(c) == []


@pytest.mark.parametrize("elr", [False, True])
def test_strict_min_isr_holds_the_hw_while_the_isr_is_below_min_isr_kip966(elr):
    """KIP-966's strict min ISR: an acks=1 write to a leader alone in its ISR is appended
    either way, but its HW (what consumers may read) moves only without KIP-966."""
    c = cluster(min_insync_replicas=2, replica_lag_time_max_ms=2000, eligible_leader_replicas_enable=str(elr).lower())
    leader = followers_cut_off(c)
    c.run_for(5000)
    assert c.state(TP).isr == (leader,)
    partition = c.broker(leader).partitions[TP]
    hw = partition.hw
    c.producer("p", {"acks": "1"}).send(TP.topic, b"k", b"v")
    c.run_for(1000)
    assert partition.log.log_end_offset == hw + 1
    assert (partition.hw == hw) == elr


def test_kip360_a_broken_sequence_bumps_the_epoch_with_no_duplicate_and_no_gap():
    """KIP-360: the leader's producer state no longer matches the producer's sequence (here
    it expects a later one, as after a truncation took the producer's last batches), so a
    send is refused with OUT_OF_ORDER_SEQUENCE_NUMBER. The idempotent producer waits for
    what is in flight, then bumps its epoch - the same producer id, sequences from 0 - and
    the broker takes the new epoch: every record once, none missing. (Before KIP-360 it
    took a new producer id.)"""
    from dataclasses import replace

    from kafkaproof.properties.duplicates import check_duplicates

    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": "all"})
    for i in range(5):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(2000)
    pid, epoch = p.proc.producer_id, p.proc.producer_epoch
    for b in c.broker_ids:  # every replica's state, so a leader change cannot hide it
        entry = c.broker(b).partitions[TP].producers.producers[pid]
        entry.batches[-1] = replace(entry.batches[-1], last_seq=entry.batches[-1].last_seq + 3)
    for i in range(5, 10):
        p.send(TP.topic, b"k", b"v%d" % i)
        c.run_for(500)
    c.run_for(5000)
    refused = [op for op in c.history.completions("send") if op.type != "ok"]
    assert (p.proc.producer_id, p.proc.producer_epoch) == (pid, epoch + 1)  # bumped, not a new id
    log = [value for _, _, value in c.committed(TP)]
    assert len(log) == len(set(log))  # no duplicate
    assert check_duplicates(c.history, {tuple(TP): c.committed(TP)}) == []
    acked = {op.value for op in c.history.completions("send", "ok")}
    assert acked <= set(log) and set(log) == {f"v{i}" for i in range(10)} - {op.value for op in refused}
    assert len(refused) <= 1  # only the send the broken sequence refused; the rest went through
