"""Unit tests, one protocol step at a time: producer state, truncation, fencing, HW,
ISR, purgatory, elections, AlterPartition, controller failover, producer ids."""

import pytest
from kafkaproof.impl.broker.broker import Broker
from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.broker.partition import Partition
from kafkaproof.impl.broker.producer_state import ProducerStateManager
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.messages import PartitionState, TopicPartition
from kafkaproof.impl.protocol.records import SimpleRecord, encode_batch, parse_header
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.storage import Log, SimDisk

TP = TopicPartition("t", 0)


def idem_batch(pid, epoch, seq, n=1):
    return encode_batch([SimpleRecord(b"v%d" % i) for i in range(n)], producer_id=pid, producer_epoch=epoch,
                        base_sequence=seq)


# --- idempotent producer state ----------------------------------------------------------


def test_producer_state_duplicate_gap_epoch():
    ps = ProducerStateManager()
    assert ps.check(parse_header(idem_batch(7, 0, 0, 2))) is None
    ps.update(parse_header(idem_batch(7, 0, 0, 2))._replace(base_offset=10))
    dup = ps.check(parse_header(idem_batch(7, 0, 0, 2)))
    assert (dup.first_offset, dup.last_offset) == (10, 11)  # the original offsets
    with pytest.raises(KafkaError) as exc:
        ps.check(parse_header(idem_batch(7, 0, 5)))
    assert exc.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert ps.check(parse_header(idem_batch(7, 0, 2))) is None  # the next in sequence
    ps.update(parse_header(idem_batch(7, 1, 0))._replace(base_offset=12))  # a new epoch resets
    with pytest.raises(KafkaError) as exc:
        ps.check(parse_header(idem_batch(7, 0, 3)))
    assert exc.value.code == ErrorCode.INVALID_PRODUCER_EPOCH


def test_producer_state_remembers_only_five_batches():
    ps = ProducerStateManager()
    for seq in range(7):
        ps.update(parse_header(idem_batch(1, 0, seq))._replace(base_offset=seq))
    # Still remembered (the last five): a duplicate, answered with the original offsets.
    assert (ps.check(parse_header(idem_batch(1, 0, 6))).first_offset) == 6
    assert (ps.check(parse_header(idem_batch(1, 0, 2))).first_offset) == 2
    with pytest.raises(KafkaError, match="OUT_OF_ORDER"):
        ps.check(parse_header(idem_batch(1, 0, 1)))  # forgotten: looks like a gap


# --- follower truncation: KIP-101, KIP-279 and the legacy behaviours ----------------------


def follower_with_epochs(config: BrokerConfig) -> Partition:
    """A follower log: epoch 0 wrote offsets 0-4, epoch 2 wrote 5-7."""
    log = Log.open(SimDisk(), "t-0")
    for i in range(8):
        log.append_as_leader(encode_batch([SimpleRecord(b"v%d" % i)]), 0 if i < 5 else 2)
    return Partition(TP, 1, log, config, hw=3)


def test_truncation_target_kip279_uses_our_own_end_of_the_leaders_epoch():
    # The leader never saw epoch 2; it answers for epoch 0, which for it ends at 6.
    fixed = follower_with_epochs(BrokerConfig())
    assert fixed.truncation_target(0, 6) == (5, True)  # our epoch 0 ends at 5: offset 5 is epoch-2 data
    legacy = follower_with_epochs(BrokerConfig(legacy_kip101_without_kip279=True))
    assert legacy.truncation_target(0, 6) == (6, True)  # keeps offset 5: a divergent record survives
    assert fixed.truncation_target(2, 7) == (7, True) and fixed.truncation_target(-1, -1) == (3, True)


def test_truncation_asks_again_when_the_leader_answers_an_epoch_we_never_had():
    # The model checker found this (kip320 variant): the leader answers for epoch 1,
    # which we never wrote; our epoch 0 ends at 5, so cut there and ask about epoch 0.
    p = follower_with_epochs(BrokerConfig())
    assert p.truncation_target(1, 8) == (5, False)
    p.truncate_to(5)
    assert p.log.epochs.latest_epoch == 0
    assert p.truncation_target(0, 3) == (3, True)  # the leader's epoch 0 ends at 3


def test_legacy_truncate_to_high_watermark_on_becoming_follower():
    p = follower_with_epochs(BrokerConfig(legacy_truncate_to_hw=True))
    p.make_follower(PartitionState(TP, 2, 3, (1, 2), (1, 2), 5))
    assert p.log.log_end_offset == 3
    q = follower_with_epochs(BrokerConfig())
    q.make_follower(PartitionState(TP, 2, 3, (1, 2), (1, 2), 5))
    assert q.log.log_end_offset == 8  # KIP-101: wait for the leader's answer instead


# --- the leader: fencing, HW, ISR, purgatory ------------------------------------------------


def leader_broker(config=None, isr=(0, 1, 2)) -> Broker:
    b = Broker(0, config or BrokerConfig(min_insync_replicas=2), SimDisk(), [0])
    b.handle("controller-0", m.LeaderAndIsrRequest(0, 1, (PartitionState(TP, 0, 4, isr, (0, 1, 2), 9),)), 0)
    return b


def sends(effects, kind):
    return [fx.message for fx in effects if isinstance(fx, m.Send) and isinstance(fx.message, kind)]


def fetch(b, replica, offset, epoch=4, now=0, wait=0):
    return b.handle(f"broker-{replica}", m.FetchRequest(1, TP, replica, offset, epoch, 1 << 20, wait, 1), now)


def test_kip320_fetches_from_other_epochs_are_fenced_unless_legacy():
    b = leader_broker()
    assert sends(fetch(b, 1, 0, epoch=3), m.FetchResponse)[0].error == ErrorCode.FENCED_LEADER_EPOCH
    assert sends(fetch(b, 1, 0, epoch=5), m.FetchResponse)[0].error == ErrorCode.UNKNOWN_LEADER_EPOCH
    assert sends(fetch(b, 1, 0, epoch=4), m.FetchResponse)[0].error == ErrorCode.NONE
    legacy = leader_broker(BrokerConfig(min_insync_replicas=2, legacy_no_fetch_epoch_fencing=True))
    assert sends(fetch(legacy, 1, 0, epoch=3), m.FetchResponse)[0].error == ErrorCode.NONE


def produce(b, value=b"x", acks=-1, now=0, timeout=1000):
    return b.handle("producer-p", m.ProduceRequest(7, TP, acks, timeout, encode_batch([SimpleRecord(value)])), now)


def test_hw_is_the_minimum_leo_over_the_isr_and_acks_all_waits_in_purgatory():
    b = leader_broker()
    assert sends(produce(b), m.ProduceResponse) == []  # parked: followers have not fetched
    p = b.partitions[TP]
    assert p.hw == 0 and len(b.purgatory) == 1
    fetch(b, 1, 1)
    assert p.hw == 0  # broker 2 has not fetched yet
    out = fetch(b, 2, 1)
    assert p.hw == 1
    resp = sends(out, m.ProduceResponse)
    assert [(r.error, r.base_offset) for r in resp] == [(ErrorCode.NONE, 0)]


def test_acks_1_answers_at_once_and_consumers_see_only_below_hw():
    b = leader_broker()
    assert sends(produce(b, acks=1), m.ProduceResponse)[0].error == ErrorCode.NONE
    consumer = sends(fetch(b, m.CONSUMER_REPLICA_ID, 0), m.FetchResponse)[0]
    assert consumer.records == b"" and consumer.high_watermark == 0
    follower = sends(fetch(b, 1, 0), m.FetchResponse)[0]
    assert follower.records != b""  # followers read beyond the HW


def test_delayed_produce_times_out_and_not_enough_replicas():
    b = leader_broker()
    produce(b, timeout=1000)
    out = b.on_timer(("delayed", 1), 1000)
    assert sends(out, m.ProduceResponse)[0].error == ErrorCode.REQUEST_TIMED_OUT
    small = leader_broker(isr=(0,))
    assert sends(produce(small), m.ProduceResponse)[0].error == ErrorCode.NOT_ENOUGH_REPLICAS


@pytest.mark.parametrize("elr", [False, True])
def test_not_enough_replicas_after_append_when_the_isr_shrinks_while_waiting(elr):
    b = leader_broker(BrokerConfig(min_insync_replicas=2, eligible_leader_replicas=elr), isr=(0, 1))
    produce(b)
    # The ISR shrinks to the leader alone (committed by the controller). Kafka 3.x: the HW
    # then passes the write, but fewer replicas than promised hold it. KIP-966's strict min
    # ISR: the HW stays, and the write waits for the ISR to grow back (or its timeout).
    out = b.handle("controller-0", m.LeaderAndIsrRequest(0, 1, (PartitionState(TP, 0, 4, (0,), (0, 1, 2), 10),)), 0)
    if elr:
        assert b.partitions[TP].hw == 0 and sends(out, m.ProduceResponse) == [] and len(b.purgatory) == 1
        return
    assert b.partitions[TP].hw == 1
    [resp] = sends(out, m.ProduceResponse)
    assert resp.error == ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND and len(b.purgatory) == 0


def test_delayed_fetch_completes_on_new_data():
    b = leader_broker()
    assert sends(fetch(b, 1, 0, wait=500), m.FetchResponse) == []
    out = produce(b, acks=1)
    assert sends(out, m.FetchResponse)[0].records != b""


def test_isr_shrinks_after_replica_lag_time_and_expands_when_caught_up():
    b = leader_broker(BrokerConfig(replica_lag_time_max_ms=1000))
    b.broker_epoch = 3
    fetch(b, 1, 0, now=0)
    fetch(b, 2, 0, now=0)
    produce(b, acks=1, now=100)
    fetch(b, 1, 1, now=1500)  # broker 1 keeps up, broker 2 goes quiet
    alter = sends(b.on_timer(("isr-check",), 2000), m.AlterPartitionRequest)
    assert alter and alter[0].new_isr == (0, 1) and alter[0].partition_epoch == 9
    p = b.partitions[TP]
    b.handle("controller-0", m.AlterPartitionResponse(TP, ErrorCode.NONE, PartitionState(TP, 0, 4, (0, 1), (0, 1, 2), 10)), 2001)
    assert p.isr == (0, 1)
    out = fetch(b, 2, 1, now=2100)  # caught up to the HW: propose it back
    alter = sends(out, m.AlterPartitionRequest)
    assert alter and alter[0].new_isr == (0, 1, 2)


# --- the controller -----------------------------------------------------------------------


def test_clean_election_picks_the_first_live_isr_member_and_bumps_the_epoch():
    c = Cluster(seed=3)
    c.create_topic("t", 1, 3)
    before = c.state(TP)
    c.crash(m.broker_node(before.leader))
    c.run_for(12_000)
    after = c.state(TP)
    live_isr = [r for r in before.replicas if r in before.isr and r != before.leader]
    assert after.leader == live_isr[0]
    assert after.leader_epoch == before.leader_epoch + 1 and before.leader not in after.isr


def test_alter_partition_is_fenced_by_partition_and_leader_epoch():
    c = Cluster(seed=4)
    c.create_topic("t", 1, 3)
    ctl, st = c.active_controller(), c.state(TP)
    epoch = c.store.read().broker_epochs[st.leader]
    stale = m.AlterPartitionRequest(st.leader, epoch, TP, st.leader_epoch, st.partition_epoch - 1, st.isr[:2])
    out = ctl.handle(m.broker_node(st.leader), stale, c.now)
    assert out[0].message.error == ErrorCode.INVALID_UPDATE_VERSION
    wrong_leader = m.AlterPartitionRequest(st.leader, epoch, TP, st.leader_epoch - 1, st.partition_epoch, st.isr[:2])
    assert ctl.handle("x", wrong_leader, c.now)[0].message.error == ErrorCode.FENCED_LEADER_EPOCH
    ok = m.AlterPartitionRequest(st.leader, epoch, TP, st.leader_epoch, st.partition_epoch, st.isr[:2])
    reply = ctl.handle("x", ok, c.now)[0].message
    assert reply.error == ErrorCode.NONE and reply.state.partition_epoch == st.partition_epoch + 1


def test_controller_failover_bumps_the_controller_epoch_and_brokers_ignore_the_old_one():
    c = Cluster(seed=5, controllers=2)
    c.create_topic("t", 1, 3)
    old = c.active_controller()
    old_epoch = old.epoch
    c.crash(old.node)
    c.run_for(3000)
    new = c.active_controller()
    assert new is not None and new is not old and new.epoch > old_epoch
    assert all(c.broker(b).controller_epoch == new.epoch for b in c.broker_ids)
    # A message from the deposed controller is ignored.
    b0 = c.broker(0)
    before = dict(b0.metadata)
    b0.handle(old.node, m.UpdateMetadataRequest(old.id, old_epoch, (), ()), c.now)
    assert b0.metadata == before and b0.live_brokers
    # The new controller still elects leaders.
    leader = c.state(TP).leader
    c.crash(m.broker_node(leader))
    c.run_for(12_000)
    assert c.state(TP).leader not in (leader, m.NO_LEADER)


def test_paused_controller_is_deposed_and_its_writes_fenced():
    c = Cluster(seed=6, controllers=2)
    c.create_topic("t", 1, 3)
    old = c.active_controller()
    c.pause(old.node, 5000)
    c.run_for(6000)
    assert c.active_controller() is not old or not old.active
    assert c.store.controller_id != old.id or c.store.controller_epoch > 1


def test_producer_ids_are_unique_across_brokers_and_restarts():
    c = Cluster(seed=7)
    c.create_topic("t", 1, 3)
    ids = []
    for b in c.broker_ids:
        for _ in range(3):
            out = c.broker(b).handle("p", m.InitProducerIdRequest(1), c.now)
            ids.append(out[0].message.producer_id)
    c.crash(m.broker_node(0))
    c.restart(m.broker_node(0))
    c.run_for(3000)
    ids.append(c.broker(0).handle("p", m.InitProducerIdRequest(1), c.now)[0].message.producer_id)
    assert len(set(ids)) == len(ids) and min(ids) >= 0


def test_topic_creation_assignment_and_partition_growth():
    c = Cluster(seed=8, brokers=4)
    c.create_topic("wide", 4, 3)
    states = [c.state(TopicPartition("wide", p)) for p in range(4)]
    assert all(len(set(st.replicas)) == 3 for st in states)
    assert len({st.leader for st in states}) == 4  # leadership spread over the brokers
    c.add_partitions("wide", 6)
    c.run_for(1000)
    grown = c.state(TopicPartition("wide", 5))
    assert len(set(grown.replicas)) == 3 and grown.leader in grown.replicas and set(grown.isr) == set(grown.replicas)
    with pytest.raises(KafkaError, match="TOPIC_ALREADY_EXISTS"):
        c.create_topic("wide", 1, 1)


def test_kip380_a_restarted_broker_ignores_control_requests_for_its_previous_life():
    b = Broker(0, BrokerConfig(), SimDisk(), [0])
    b.broker_epoch = 7  # registered again after a restart
    stale = m.LeaderAndIsrRequest(0, 1, (PartitionState(TP, 0, 4, (0, 1, 2), (0, 1, 2), 9),), broker_epoch=3)
    b.handle("controller-0", stale, 0)
    assert TP not in b.partitions  # a delayed request from before the restart: ignored
    fresh = m.LeaderAndIsrRequest(0, 1, (PartitionState(TP, 0, 5, (0, 1, 2), (0, 1, 2), 10),), broker_epoch=7)
    b.handle("controller-0", fresh, 0)
    assert b.partitions[TP].is_leader and b.partitions[TP].leader_epoch == 5
