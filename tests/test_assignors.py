"""Properties of the four assignors over random groups (Hypothesis): exclusive, complete,
subscription-respecting, idle members when members outnumber partitions, sticky keeps
as much as balance allows, cooperative never hands over a partition its owner still holds
and settles after a few follow-up rebalances."""

from hypothesis import given
from hypothesis import strategies as st
from kafkaproof.impl.client.assignors import ASSIGNORS, Subscription, assign, sticky_assign
from kafkaproof.impl.protocol.messages import TopicPartition

TOPICS = ("a", "b", "c")


@st.composite
def groups(draw, same_subscriptions=False):
    partitions = {t: draw(st.integers(0, 7)) for t in TOPICS}
    n = draw(st.integers(1, 8))
    names = [f"m{i}" for i in range(n)]
    every = draw(st.lists(st.sampled_from(TOPICS), min_size=1, max_size=3, unique=True))
    subs = {}
    for name in names:
        topics = every if same_subscriptions else draw(st.lists(st.sampled_from(TOPICS), min_size=1, max_size=3,
                                                                unique=True))
        subs[name] = tuple(sorted(topics))
    # a previous generation's assignment: disjoint, each to a subscriber of its topic
    owned = {name: [] for name in names}
    for t in TOPICS:
        for p in range(partitions[t]):
            holders = [m for m in names if t in subs[m]]
            pick = draw(st.sampled_from([None] + holders))
            if pick is not None:
                owned[pick].append(TopicPartition(t, p))
    members = {m: Subscription(subs[m], tuple(owned[m])) for m in names}
    return members, partitions


def _check_basic(result, members, partitions, complete=True):
    assert set(result) == set(members)
    flat = [tp for tps in result.values() for tp in tps]
    assert len(flat) == len(set(flat)), "a partition assigned twice"
    for m, tps in result.items():
        assert all(tp.topic in members[m].topics and tp.partition < partitions[tp.topic] for tp in tps)
    wanted = {TopicPartition(t, p) for s in members.values() for t in s.topics for p in range(partitions[t])}
    if complete:
        assert set(flat) == wanted, "a subscribed partition is unowned"


@given(groups(), st.sampled_from([a for a in ASSIGNORS if a != "cooperative-sticky"]))
def test_exclusive_complete_and_within_subscriptions(group, strategy):
    members, partitions = group
    _check_basic(assign(strategy, members, partitions), members, partitions)


@given(groups(same_subscriptions=True), st.sampled_from(ASSIGNORS))
def test_balanced_and_extra_members_idle_with_equal_subscriptions(group, strategy):
    members, partitions = group
    if strategy == "cooperative-sticky":
        members = {m: s._replace(owned=()) for m, s in members.items()}  # a new group: nothing to revoke
    result = assign(strategy, members, partitions)
    total = sum(partitions[t] for t in next(iter(members.values())).topics)
    counts = sorted(len(tps) for tps in result.values())
    if strategy != "range":  # range balances per topic, so several topics can stack up
        assert counts[-1] - counts[0] <= 1
    if len(members) > total:
        assert counts.count(0) >= len(members) - total


@given(groups(same_subscriptions=True))
def test_sticky_keeps_as_many_partitions_as_balance_allows(group):
    members, partitions = group
    result = sticky_assign(members, partitions)
    total = sum(len(v) for v in result.values())
    floor, extra = divmod(total, len(members))
    # the best possible: the members that owned most keep up to the larger share
    by_owned = sorted(members.values(), key=lambda s: -len(s.owned))
    best = sum(min(len(s.owned), floor + (1 if i < extra else 0)) for i, s in enumerate(by_owned))
    kept = sum(len(set(result[m]) & set(s.owned)) for m, s in members.items())
    assert kept == best


@given(groups())
def test_cooperative_never_gives_a_partition_its_owner_still_holds_and_settles(group):
    members, partitions = group
    first = assign("cooperative-sticky", members, partitions)
    _check_basic(first, members, partitions, complete=False)
    for m, tps in first.items():
        for tp in tps:
            assert all(tp not in s.owned for other, s in members.items() if other != m)
    # The owners revoke what they lost; follow-up rebalances hand it over, never to a
    # member while another still owns it, until nobody has anything left to revoke.
    owned, rounds = first, 1
    while True:
        after = {m: Subscription(s.topics, tuple(owned[m])) for m, s in members.items()}
        nxt = assign("cooperative-sticky", after, partitions)
        for m, tps in nxt.items():
            assert all(tp not in owned[other] for tp in tps for other in members if other != m)
        rounds += 1
        if nxt == owned:
            break
        owned = nxt
        assert rounds <= 4, "did not settle"
    _check_basic(owned, members, partitions)
