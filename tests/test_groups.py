"""Consumer groups on the simulated cluster: membership, every rebalance trigger, the
four assignors in action, offset commits stored in __consumer_offsets, coordinator
failover, and the errors that fence a member out of its group."""

import pytest
from kafkaproof.impl.protocol.errors import ErrorCode
from kafkaproof.impl.protocol.messages import TopicPartition, broker_node
from kafkaproof.impl.sim.cluster import Cluster

GROUP = "g"


def cluster(seed=1, **props):
    base = {"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"}
    return Cluster(seed=seed, broker_props={**base, **{k.replace("_", "."): str(v) for k, v in props.items()}})


def member(c, name, strategy="range", topics=("t",), pattern=None, **props):
    cfg = {"group.id": GROUP, "auto.offset.reset": "earliest", "enable.auto.commit": "false",
           "partition.assignment.strategy": strategy, "session.timeout.ms": "10000",
           **{k.replace("_", "."): str(v) for k, v in props.items()}}
    h = c.consumer(name, cfg)
    h.subscribe(list(topics) if pattern is None else None, pattern)
    h.polling = True
    h.seen = []
    return h


def drive(c, members, ms, every=100):
    """Each live, polling member polls every `every` ms for `ms`."""
    def tick():
        for h in members:
            if h.polling and h.node not in c.down:
                h.seen += [(tp, r.offset) for tp, r in h.poll()]
    end = c.now + ms
    c.every(every, tick, until=end)
    c.run_for(ms)


def owners(c, members):
    out = {}
    for h in members:
        if h.node not in c.down and h.proc.group.state == "stable":
            for tp in h.proc.group.owned:
                out.setdefault(tp, []).append(h.process)
    return out


def produce(c, topic="t", n=40):
    p = c.producer("p")
    for i in range(n):
        p.send(topic, b"k%d" % i, b"v%d" % i)
    c.run_for(1000)


def test_each_partition_has_one_owner_and_extra_members_are_idle():
    c = cluster()
    c.create_topic("t", 3, 3)
    ms = [member(c, f"m{i}") for i in range(5)]
    drive(c, ms, 5000)
    own = owners(c, ms)
    assert sorted(own) == [TopicPartition("t", p) for p in range(3)]
    assert all(len(v) == 1 for v in own.values())
    idle = [h for h in ms if not h.proc.group.owned]
    assert len(idle) == 2 and all(h.proc.group.state == "stable" for h in idle)
    assert len({h.proc.group.generation for h in ms}) == 1


def test_a_joining_member_triggers_a_rebalance_that_moves_partitions_to_it():
    c = cluster()
    c.create_topic("t", 4, 3)
    ms = [member(c, "a")]
    drive(c, ms, 3000)
    gen = ms[0].proc.group.generation
    assert len(ms[0].proc.group.owned) == 4
    ms.append(member(c, "b"))
    drive(c, ms, 6000)
    assert ms[0].proc.group.generation > gen
    assert len(ms[0].proc.group.owned) == 2 and len(ms[1].proc.group.owned) == 2


def test_a_leaving_member_hands_its_partitions_over_at_once():
    c = cluster()
    c.create_topic("t", 4, 3)
    ms = [member(c, "a"), member(c, "b")]
    drive(c, ms, 4000)
    ms[1].close()
    ms[1].polling = False
    drive(c, ms, 3000)  # well below session.timeout.ms: LeaveGroup, not a timeout
    assert len(ms[0].proc.group.owned) == 4


def test_a_dead_member_is_dropped_after_session_timeout_not_before():
    c = cluster()
    c.create_topic("t", 4, 3)
    ms = [member(c, "a"), member(c, "b")]
    drive(c, ms, 4000)
    c.crash(ms[1].node)
    drive(c, ms, 5000)
    assert len(ms[0].proc.group.owned) == 2  # 5 s < session.timeout.ms = 10 s: still waiting
    drive(c, ms, 10_000)
    assert len(ms[0].proc.group.owned) == 4


def test_a_member_that_stops_polling_leaves_and_its_late_commit_is_refused():
    c = cluster()
    c.create_topic("t", 2, 3)
    produce(c)
    ms = [member(c, "a", max_poll_interval_ms=5000), member(c, "b", max_poll_interval_ms=5000)]
    drive(c, ms, 4000)
    slow = ms[1]
    slow.polling = False  # processing takes too long; its heartbeats go on
    drive(c, ms, 12_000)
    assert len(ms[0].proc.group.owned) == 2
    results = []
    slow.commit(on_done=results.append, offsets={TopicPartition("t", 1): 1})
    c.run_for(2000)
    assert results and results[0] in (ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.ILLEGAL_GENERATION)
    slow.poll()  # back from its long processing: it hears that it lost its partitions
    lost = [op for op in c.history.ops if op.f == "lost" and op.process == slow.process]
    assert lost and lost[0].records


def test_a_new_topic_matching_the_pattern_is_assigned():
    c = cluster()
    c.create_topic("orders-eu", 2, 3)
    ms = [member(c, "a", pattern="orders-.*", metadata_max_age_ms=1000), member(c, "b", pattern="orders-.*",
                                                                              metadata_max_age_ms=1000)]
    drive(c, ms, 4000)
    assert {tp.topic for tp in owners(c, ms)} == {"orders-eu"}
    c.create_topic("orders-us", 2, 3)
    c.create_topic("invoices", 2, 3)
    drive(c, ms, 6000)
    assert sorted(owners(c, ms)) == [TopicPartition(t, p) for t in ("orders-eu", "orders-us") for p in range(2)]


def test_more_partitions_for_a_subscribed_topic_are_assigned():
    c = cluster()
    c.create_topic("t", 2, 3)
    ms = [member(c, "a", metadata_max_age_ms=1000), member(c, "b", metadata_max_age_ms=1000)]
    drive(c, ms, 4000)
    c.add_partitions("t", 4)
    drive(c, ms, 6000)
    assert sorted(owners(c, ms)) == [TopicPartition("t", p) for p in range(4)]


def test_the_committed_offset_is_the_next_to_read_and_a_successor_starts_there():
    c = cluster()
    c.create_topic("t", 1, 3)
    produce(c, n=10)
    a = member(c, "a", max_poll_records=4)
    while not a.seen:  # poll until the first records come: one poll's worth, 4
        drive(c, [a], 100, every=100)
    assert [o for _, o in a.seen] == [0, 1, 2, 3]
    done = []
    a.commit(on_done=done.append)
    c.run_for(1000)
    assert done == [ErrorCode.NONE]
    commit = [op for op in c.history.ops if op.f == "commit" and op.type == "ok"][0]
    assert commit.records == (("t", 0, 4, None, None),)  # next to read: 4, not 3
    a.close()
    b = member(c, "b")
    drive(c, [b], 3000)
    assert [o for _, o in b.seen] == list(range(4, 10))


def test_auto_offset_reset_none_without_a_commit_is_an_error():
    c = cluster()
    c.create_topic("t", 1, 3)
    produce(c, n=3)
    a = member(c, "a", auto_offset_reset="none")
    drive(c, [a], 3000)
    assert a.seen == [] and a.proc.errors


def test_coordinator_failover_keeps_groups_and_offsets():
    c = cluster()
    c.create_topic("t", 2, 3)
    produce(c, n=20)
    ms = [member(c, "a"), member(c, "b")]
    drive(c, ms, 3000)
    for h in ms:
        h.commit()
    c.run_for(1000)
    committed = {tp: o for op in c.history.ops if op.f == "commit" and op.type == "ok"
                 for t, p, o, _, _ in op.records for tp in [TopicPartition(t, p)]}
    assert sum(committed.values()) == 20
    coordinator = c.coordinator(GROUP)
    gen = ms[0].proc.group.generation
    c.crash(broker_node(coordinator))
    drive(c, ms, 15_000)  # the controller notices after broker.session.timeout.ms
    new = c.coordinator(GROUP)
    assert new is not None and new != coordinator
    group = c.broker(new).groups.groups[GROUP]
    assert group.offsets == committed  # reloaded from the log
    assert ms[0].proc.group.generation == gen  # members carried on: no rebalance needed
    assert all(h.proc.group.coordinator == broker_node(new) for h in ms)


def test_a_commit_from_an_older_generation_is_fenced():
    c = cluster()
    c.create_topic("t", 2, 3)
    a = member(c, "a")
    drive(c, [a], 2000)
    old = a.proc.group.generation
    b = member(c, "b")
    drive(c, [a, b], 5000)
    assert a.proc.group.generation > old
    a.proc.group.generation = old  # a zombie that missed the rebalance
    results = []
    a.commit(on_done=results.append, offsets={TopicPartition("t", 0): 0})
    c.run_for(1000)
    assert results == [ErrorCode.ILLEGAL_GENERATION]


def test_members_without_a_common_assignor_are_refused():
    c = cluster()
    c.create_topic("t", 2, 3)
    a = member(c, "a", strategy="range")
    drive(c, [a], 2000)
    b = member(c, "b", strategy="roundrobin")
    drive(c, [a, b], 2000)
    assert b.proc.group.fatal == ErrorCode.INCONSISTENT_GROUP_PROTOCOL


def test_a_session_timeout_outside_the_brokers_bounds_is_refused():
    c = cluster()
    c.create_topic("t", 1, 3)
    a = member(c, "a", session_timeout_ms=1000)  # group.min.session.timeout.ms is 6000
    drive(c, [a], 2000)
    assert a.proc.group.fatal == ErrorCode.INVALID_SESSION_TIMEOUT


@pytest.mark.parametrize("strategy", ["range", "roundrobin", "sticky", "cooperative-sticky"])
def test_every_assignor_covers_every_partition_once(strategy):
    c = cluster()
    c.create_topic("t", 6, 3)
    c.create_topic("u", 3, 3)
    ms = [member(c, f"m{i}", strategy=strategy, topics=("t", "u")) for i in range(4)]
    drive(c, ms, 8000)
    own = owners(c, ms)
    assert sorted(own) == sorted([TopicPartition("t", p) for p in range(6)] + [TopicPartition("u", p)
                                                                            for p in range(3)])
    assert all(len(v) == 1 for v in own.values())
    assert ms[0].proc.group.protocol == strategy


def _revocations(c, process):
    return [tp for op in c.history.ops if op.f == "revoked" and op.process == process for tp in op.records]


def test_cooperative_members_keep_what_does_not_move_eager_ones_give_everything_back():
    for strategy, keeps in (("range", False), ("cooperative-sticky", True)):
        c = cluster()
        c.create_topic("t", 4, 3)
        ms = [member(c, "a", strategy=strategy), member(c, "b", strategy=strategy)]
        drive(c, ms, 4000)
        before = set(ms[0].proc.group.owned)
        ms.append(member(c, "c", strategy=strategy))
        drive(c, ms, 8000)
        revoked = _revocations(c, ms[0].process)
        assert sorted(owners(c, ms)) == [TopicPartition("t", p) for p in range(4)]
        if keeps:
            assert len(revoked) <= 1 and set(ms[0].proc.group.owned) <= before
        else:
            assert len(revoked) >= len(before)


def test_a_listener_commits_before_its_partitions_move_so_the_next_owner_redelivers_nothing():
    c = cluster()
    c.create_topic("t", 2, 3)
    p = c.producer("p")
    c.every(20, lambda: p.send("t", None, b"x"), until=12_000)
    a = member(c, "a")
    results = []

    class CommitOnRevoke:
        def on_partitions_revoked(self, tps):
            a.commit(on_done=results.append)  # commitSync of what was processed so far

    a.listener = CommitOnRevoke()
    drive(c, [a], 4000)
    b = member(c, "b")
    drive(c, [a, b], 10_000)
    assert results and results[0] == ErrorCode.NONE  # still our generation while it rebalances
    moved = set(b.proc.group.owned)
    assert moved
    seen_by_a = {(tp, o) for tp, o in a.seen}
    assert not [x for x in b.seen if x in seen_by_a]  # b starts where a committed
