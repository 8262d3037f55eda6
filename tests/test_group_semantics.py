"""The delivery semantics of each commit strategy, shown deterministically (the seed
notes' table): a group member crashes at the worst moment for its strategy, a second
member takes over, and the group checkers name what the application saw.

    commit after processing   at-least-once: redelivered, never unseen
    commit before processing  at-most-once: unseen, never redelivered
    auto commit               redelivered after a crash
    auto commit + async work  unseen: the commit covered records not yet processed
"""

import pytest
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.consumer_app import ConsumerApp
from kafkaproof.properties.groups import check_consumption

BROKER = {"offsets.topic.num.partitions": "3", "group.initial.rebalance.delay.ms": "0"}
CONSUMER = {"group.id": "app", "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
            "heartbeat.interval.ms": "1000", "partition.assignment.strategy": "range", "max.poll.records": "5"}


def run(strategy, crash, seed=1):
    """`crash`: "processed" (right after the application processed a batch, before it
    does anything else), "committing" (while its commitSync is in flight) or
    "auto-committed" (right after an auto commit succeeded)."""
    c = Cluster(seed=seed, broker_props=BROKER)
    c.create_topic("t", 1, 3)
    p = c.producer("p")
    sent = iter(range(10**6))
    c.every(20, lambda: p.send("t", None, b"v%d" % next(sent)), until=8000)
    first = ConsumerApp(c, "first", strategy, CONSUMER, topics=["t"])
    c.run_for(3000)
    second = ConsumerApp(c, "second", strategy, CONSUMER, topics=["t"])  # idle: one partition
    c.run_for(1000)
    assert any(op.f == "process" for op in c.history.ops if op.process == first.consumer.process)
    state = {"crashed": False}

    def kill():
        if not state["crashed"]:
            c.crash(first.consumer.node)
            state["crashed"] = True

    if crash == "processed":
        first.on_processed = kill
    else:
        def watch():
            ops = [op for op in c.history.ops[-10:] if op.process == first.consumer.process and op.f == "commit"]
            if ops and ops[-1].type == ("invoke" if crash == "committing" else "ok"):
                kill()
        c.every(1, watch, until=9000)
    c.run_for(30_000)
    assert state["crashed"] and second.consumer.proc.group.owned
    found = check_consumption(c.history, {("t", 0): c.committed(c.state(("t", 0)).tp)})
    return {v.name for v in found}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_commit_after_processing_is_at_least_once(seed):
    assert run("after", "processed", seed) == {"redelivered"}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_commit_before_processing_is_at_most_once(seed):
    assert run("before", "committing", seed) == {"unseen"}


def test_auto_commit_redelivers_after_a_crash():
    assert run("auto", "processed") == {"redelivered"}


def test_auto_commit_with_asynchronous_processing_loses_records():
    assert "unseen" in run("auto-async", "auto-committed")
