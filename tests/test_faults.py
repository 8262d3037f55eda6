"""Faults the simulator can inject, and what Kafka's design makes of them."""

import pytest
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node, controller_node
from kafkaproof.impl.protocol.records import decode_batch
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.storage.disk import read_whole
from kafkaproof.properties.durability import check_durability

TP = TopicPartition("orders", 0)


def cluster(seed=1, **props):
    c = Cluster(seed=seed, broker_props={k.replace("_", "."): str(v) for k, v in props.items()})
    c.create_topic(TP.topic, 1, 3)
    return c


def settle_and_check(c):
    c.heal()
    for node in sorted(c.down):
        c.restart(node)
    c.run_for(20_000)
    return check_durability(c.history, {tuple(TP): c.committed(TP)})


@pytest.mark.parametrize("acks, loses", [("1", True), ("all", False)])
def test_zombie_leader_cut_off_with_its_producer(acks, loses):
    """The leader and one producer are cut from the rest: the controller elects a new
    leader, the old one does not know. acks=1 writes it accepts are lost when it rejoins;
    acks=all writes cannot commit without followers, so they are never acknowledged."""
    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": acks, "request.timeout.ms": "3000", "delivery.timeout.ms": "20000"})
    old = c.leader(TP)
    rest = [broker_node(b) for b in c.broker_ids if b != old] + [controller_node(0)]
    c.partition([broker_node(old), p.node], rest)
    for i in range(5):
        p.send(TP.topic, b"k", b"during-partition-%d" % i)
    c.run_for(15_000)
    assert c.state(TP).leader not in (old, -1)  # a new leader on the majority side
    assert c.broker(old).partitions[TP].is_leader  # and a zombie that still thinks it leads
    acked = c.history.completions("send", "ok")
    assert bool(acked) == (acks == "1")
    violations = settle_and_check(c)
    assert bool(violations) == loses
    if loses:
        assert {v.name for v in violations} == {"lost-write"} and len(violations) == len(acked)


def test_one_way_cut_leader_to_controller_fences_the_leader_without_loss():
    """Heartbeats stop arriving (leader -> controller cut on the control plane only), so
    the controller fences the leader; the way back still works, so the leader hears it
    and steps down. The data plane never broke."""
    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": "all"})
    old = c.leader(TP)
    counter = iter(range(10**6))
    c.every(50, lambda: p.send(TP.topic, b"k", b"v%d" % next(counter)), until=20_000)
    c.run_for(1000)
    c.cut(broker_node(old), controller_node(0), planes=("control",))
    c.run_for(15_000)
    assert c.state(TP).leader != old
    assert not c.broker(old).partitions[TP].is_leader  # told to step down over the intact direction
    assert settle_and_check(c) == []
    assert len(c.history.completions("send", "ok")) > 100


def test_linger_and_batch_size_shape_batches():
    c = cluster()
    p = c.producer("p", {"acks": "1", "linger.ms": "100"})
    for i in range(10):
        p.send(TP.topic, None, b"r%d" % i)
    c.run_for(1000)
    log = c.broker(c.leader(TP)).partitions[TP].log
    batch = decode_batch(log.read(0))
    assert batch.header.record_count == 10  # one batch: linger.ms gathered them
    small = c.producer("q", {"acks": "1", "batch.size": "60"})
    for i in range(10):
        small.send(TP.topic, None, b"s%d" % i)
    c.run_for(1000)
    counts = []
    offset = 10
    while offset < log.log_end_offset:
        b = decode_batch(log.read(offset))
        counts.append(b.header.record_count)
        offset = b.header.next_offset
    assert sum(counts) == 10 and max(counts) < 10 and len(counts) > 1


def test_delivery_timeout_fails_sends_that_cannot_reach_a_leader():
    c = cluster()
    p = c.producer("p", {"delivery.timeout.ms": "5000", "request.timeout.ms": "2000", "max.block.ms": "3000"})
    c.run_for(100)  # metadata known
    late = c.producer("late", {"max.block.ms": "3000"})
    for b in c.broker_ids:
        c.crash(broker_node(b))
    sent_at = c.now
    p.send(TP.topic, b"k", b"nowhere")
    late.send(TP.topic, b"k", b"no-metadata")  # never learns the topic: max.block.ms
    c.run_for(10_000)
    outcomes = {op.value: op for op in c.history.completions("send")}
    # Every attempt was refused (the brokers were already down): certainly not written.
    assert outcomes["nowhere"].type == "fail" and outcomes["nowhere"].error == "REQUEST_TIMED_OUT"
    assert outcomes["nowhere"].time <= sent_at + 5000  # delivery.timeout.ms bounds the retries
    assert outcomes["no-metadata"].type == "fail" and outcomes["no-metadata"].time == sent_at + 3000


def test_brokers_write_kafka_checkpoint_files():
    c = cluster()
    p = c.producer("p")
    for i in range(3):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(6000)  # past replica.high.watermark.checkpoint.interval.ms
    for b in c.broker_ids:
        disk = c.disks[b]
        assert read_whole(disk, "replication-offset-checkpoint") == b"0\n1\norders 0 3\n"
        assert read_whole(disk, "recovery-point-offset-checkpoint").startswith(b"0\n1\norders 0 ")
        assert read_whole(disk, "orders-0/leader-epoch-checkpoint") == b"0\n1\n0 0\n"


def test_clock_jump_moves_record_timestamps():
    c = cluster()
    p = c.producer("p", {"acks": "1"})
    p.send(TP.topic, None, b"before")
    c.run_for(500)
    c.clock_jump(p.node, 3_600_000)
    p.send(TP.topic, None, b"after")
    c.run_for(500)
    log = c.broker(c.leader(TP)).partitions[TP].log
    first, second = log.read_records(0)
    assert second.timestamp - first.timestamp >= 3_600_000


def test_pause_delays_but_does_not_reorder_a_process():
    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": "all"})
    follower = next(b for b in c.broker_ids if b != c.leader(TP))
    c.pause(broker_node(follower), 3000)
    for i in range(10):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(8000)
    assert [v for _, _, v in c.committed(TP)] == [f"v{i}" for i in range(10)]
    assert settle_and_check(c) == []


def test_partition_components_follow_the_cut():
    c = cluster()
    c.partition([broker_node(0), controller_node(0)], [broker_node(1), broker_node(2)])
    groups = [g for g in c.network.components() if any(n.startswith("broker") for n in g)]
    assert {frozenset(g) for g in groups} >= {frozenset({broker_node(0), controller_node(0)}),
                                              frozenset({broker_node(1), broker_node(2)})}
    c.heal()
    assert len(c.network.components()) == 1


def test_clean_shutdown_restart_loads_logs_without_scanning_them():
    c = cluster(min_insync_replicas=2)
    p = c.producer("p", {"acks": "all"})
    for i in range(50):
        p.send(TP.topic, b"k", b"v%d" % i)
    c.run_for(2000)
    b = next(x for x in c.broker_ids if x != c.leader(TP))
    c.shutdown(b)
    c.restart(broker_node(b))
    c.run_for(3000)
    report = c.broker(b).partitions[TP].log.last_recovery
    assert report.batches_validated == 0 and report.truncations == []  # the recovery point covered it all
    assert settle_and_check(c) == []


def test_a_restarted_broker_never_takes_a_response_meant_for_its_previous_life(monkeypatch):
    """A broker crashed and restarted at once still receives the fetch responses its
    previous process was waiting for. Their correlation ids must not match the new
    process's requests, or one partition's records land in another's log. The group
    campaign found it with this schedule: a producer's records in __consumer_offsets."""
    from kafkaproof.impl.sim.consumer_app import ConsumerApp

    c = Cluster(seed=0, broker_props={"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0",
                                      "min.insync.replicas": "2", "replica.lag.time.max.ms": "3000"})
    c.create_topic("events-0", 2, 3)
    writer = c.producer("writer", {"acks": "all", "request.timeout.ms": "2000"})
    topics = {"events-0": 2}
    sent = iter(range(1, 10**9))

    def produce() -> None:
        n = next(sent)
        writer.send(sorted(topics)[n % len(topics)], b"k%d" % (n % 7), b"v%d" % n)

    c.every(40, produce)
    for i in range(2):
        ConsumerApp(c, f"m{i}", "after", {"group.id": "app", "auto.offset.reset": "earliest",
                                          "session.timeout.ms": "6000", "heartbeat.interval.ms": "1000",
                                          "metadata.max.age.ms": "2000"}, pattern="events.*")

    def grow() -> None:
        topics["events-0"] += 1
        c.add_partitions("events-0", topics["events-0"])

    def new_topic() -> None:
        name = f"events-{len(topics)}"
        c.create_topic(name, 2, 3)
        topics[name] = 2

    def crash_coordinator() -> None:
        leader = c.coordinator("app")
        if leader is not None and not any(broker_node(b) in c.down for b in c.broker_ids):
            c.crash(broker_node(leader))

    def restart_brokers() -> None:
        for b in c.broker_ids:
            if broker_node(b) in c.down:
                c.restart(broker_node(b))

    grow(), new_topic(), crash_coordinator(), grow(), restart_brokers(), grow()
    c.run_for(500)
    for _ in range(3):
        crash_coordinator()
    new_topic(), restart_brokers()
    c.run_for(20_000)
    for tp in sorted(c.broker(0).metadata):
        for b in c.broker_ids:
            for _, key, value in c.replica_records(b, tp):
                if tp.topic == "__consumer_offsets":
                    assert key.startswith("["), (tp, b, key)  # the coordinator's JSON keys only
                else:
                    assert value.startswith("v"), (tp, b, value)
