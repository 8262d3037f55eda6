"""Each checker on small hand-made histories: one that holds, one that breaks it."""

from kafkaproof.properties import check_all
from kafkaproof.properties.duplicates import check_duplicates
from kafkaproof.properties.durability import check_durability
from kafkaproof.properties.history import History
from kafkaproof.properties.monotonic import check_monotonic_reads
from kafkaproof.properties.order import check_send_order
from kafkaproof.properties.read_your_writes import check_read_your_writes


def history(*steps):
    """steps: ("send", process, type, value, partition, offset) or
    ("poll", process, [(partition, offset, value), ...]) or ("seek", process, partition, offset)."""
    h = History()
    for t, step in enumerate(steps):
        kind, process = step[0], step[1]
        if kind == "send":
            _, _, type_, value, partition, offset = step
            if type_ == "invoke":
                h.add(t, process, "invoke", "send", topic="t", value=value)
            else:
                h.add(t, process, type_, "send", topic="t", value=value, partition=partition, offset=offset)
        elif kind == "poll":
            h.add(t, process, "invoke", "poll")
            h.add(t, process, "ok", "poll", records=tuple(("t", p, o, None, v) for p, o, v in step[2]))
        elif kind == "seek":
            h.add(t, process, "ok", "seek", topic="t", partition=step[2], offset=step[3])
    return h


def log(*values, partition=0, start=0):
    return {("t", partition): [(start + i, None, v) for i, v in enumerate(values)]}


def sent(process, value, offset, partition=0, type_="ok"):
    return [("send", process, "invoke", value, None, None), ("send", process, type_, value, partition, offset)]


def test_lost_write_and_inconsistent_offsets():
    h = history(*sent("p", "a", 0), *sent("p", "b", 1), *sent("p", "c", 2))
    assert check_durability(h, log("a", "b", "c")) == []
    [lost] = check_durability(h, log("a", "b"))
    assert lost.name == "lost-write" and lost.ops[0].value == "c"
    moved = check_durability(h, log("a", "c", "b"))
    assert [(v.name, v.ops[0].value) for v in moved] == [("inconsistent-offsets", "b"), ("inconsistent-offsets", "c")]
    # an unacknowledged (info) send may or may not survive: never a lost write
    h2 = history(*sent("p", "x", None, type_="info"))
    assert check_durability(h2, log()) == []


def test_duplicate_in_the_log_or_in_polls():
    h = history(*sent("p", "a", 0), *sent("p", "b", 1))
    assert check_duplicates(h, log("a", "b")) == []
    [dup] = check_duplicates(h, log("a", "b", "a"))
    assert dup.name == "duplicate" and "[0, 2]" in dup.detail
    h2 = history(*sent("p", "a", 0), ("poll", "c", [(0, 0, "a"), (0, 1, "a")]))
    assert [v.name for v in check_duplicates(h2, log("a"))] == ["duplicate"]


def test_nonmonotonic_poll_and_seek():
    ok = history(("poll", "c", [(0, 0, "a"), (0, 1, "b")]), ("poll", "c", [(0, 2, "c")]))
    assert check_monotonic_reads(ok, log("a", "b", "c")) == []
    back = history(("poll", "c", [(0, 0, "a"), (0, 1, "b")]), ("poll", "c", [(0, 1, "b")]))
    assert [v.name for v in check_monotonic_reads(back, log("a", "b"))] == ["nonmonotonic-poll"]
    sought = history(("poll", "c", [(0, 0, "a"), (0, 1, "b")]), ("seek", "c", 0, 0), ("poll", "c", [(0, 0, "a")]))
    assert check_monotonic_reads(sought, log("a", "b")) == []
    other_partition = history(("poll", "c", [(0, 5, "a"), (1, 0, "b")]))
    assert check_monotonic_reads(other_partition, {}) == []


def test_poll_skip_only_counts_offsets_the_log_has():
    skip = history(("poll", "c", [(0, 0, "a")]), ("poll", "c", [(0, 2, "c")]))
    [v] = check_monotonic_reads(skip, log("a", "b", "c"))
    assert v.name == "poll-skip" and "skipping @1" in v.detail
    # offset 1 was a transaction marker (not in the log of records): no skip
    gap = {("t", 0): [(0, None, "a"), (2, None, "c")]}
    assert check_monotonic_reads(skip, gap) == []


def test_nonmonotonic_send():
    ok = history(*sent("p", "a", 0), *sent("p", "b", 1))
    assert check_send_order(ok) == []
    swapped = history(("send", "p", "invoke", "a", None, None), ("send", "p", "invoke", "b", None, None),
                      ("send", "p", "ok", "b", 0, 0), ("send", "p", "ok", "a", 0, 1))
    [v] = check_send_order(swapped)
    assert v.name == "nonmonotonic-send" and "'a' before 'b'" in v.detail
    two_producers = history(("send", "p", "invoke", "a", None, None), ("send", "q", "invoke", "b", None, None),
                            ("send", "q", "ok", "b", 0, 0), ("send", "p", "ok", "a", 0, 1))
    assert check_send_order(two_producers) == []


def test_read_your_writes():
    ok = history(*sent("app", "mine", 3), ("poll", "app", [(0, 3, "mine"), (0, 4, "x")]))
    assert check_read_your_writes(ok) == []
    replaced = history(*sent("app", "mine", 3), ("poll", "app", [(0, 3, "other"), (0, 4, "x")]))
    [v] = check_read_your_writes(replaced)
    assert v.name == "read-your-writes"
    not_yet = history(*sent("app", "mine", 3), ("poll", "app", [(0, 1, "old")]))
    assert check_read_your_writes(not_yet) == []  # did not read that far: no claim
    earlier = history(("poll", "app", [(0, 3, "other")]), *sent("app", "mine", 3))
    assert check_read_your_writes(earlier) == []  # the read came first


def test_check_all_groups_by_guarantee():
    h = history(*sent("p", "a", 0), *sent("p", "b", 1))
    result = check_all(h, log("a", "a"))
    assert [(v.name, v.ops[0].value) for v in result["durability"]] == [("lost-write", "b")]
    assert result["exactly-once"] and not result["monotonic-reads"] and not result["partition-order"]


def test_history_round_trips_through_json_lines():
    h = history(*sent("p", "a", 0), ("poll", "c", [(0, 0, "a")]))
    again = History.from_jsonl(h.to_jsonl())
    assert again.ops == h.ops


# -- consumer groups -----------------------------------------------------------------------------

from kafkaproof.properties.groups import check_commits, check_consumption, check_group_exclusivity  # noqa: E402


def group_history(*steps):
    """steps: ("owns", process, generation, [partitions]) / ("commit", process, generation,
    {partition: offset}, type) / ("process", process, [(partition, offset)])."""
    h = History()
    for t, step in enumerate(steps):
        kind, process = step[0], step[1]
        if kind == "owns":
            h.add(t, process, "ok", "owns", value=f"{step[2]} {process}-id",
                  records=tuple(("t", p, -1, None, None) for p in step[3]))
        elif kind == "commit":
            recs = tuple(("t", p, o, None, None) for p, o in step[3].items())
            h.add(t, process, "invoke", "commit", value="sync", records=recs)
            h.add(t, process, step[4], "commit", value=f"sync {step[2]}", records=recs)
        elif kind == "process":
            h.add(t, process, "ok", "process", records=tuple(("t", p, o, None, None) for p, o in step[2]))
    return h


def test_two_owners_in_one_generation_but_not_across_generations():
    ok = group_history(("owns", "a", 1, [0, 1]), ("owns", "b", 1, [2]), ("owns", "b", 2, [0]), ("owns", "a", 2, [1]))
    assert check_group_exclusivity(ok) == []
    bad = group_history(("owns", "a", 3, [0, 1]), ("owns", "b", 3, [1]))
    found = check_group_exclusivity(bad)
    assert [v.name for v in found] == ["shared-partition"] and "t-1" in found[0].detail


def test_committed_offsets_regressing_in_a_generation_or_lost_at_the_end():
    ok = group_history(("commit", "a", 1, {0: 5}, "ok"), ("commit", "a", 1, {0: 9}, "ok"),
                       ("commit", "b", 2, {0: 7}, "fail"))
    assert check_commits(ok, {("t", 0): 9}) == []
    regress = group_history(("commit", "a", 1, {0: 9}, "ok"), ("commit", "a", 1, {0: 5}, "ok"))
    assert [v.name for v in check_commits(regress)] == ["offset-regression"]
    assert [v.name for v in check_commits(ok, {("t", 0): 5})] == ["lost-commit"]
    assert check_commits(ok, None) == []  # no final read: only regressions are judged


def test_unseen_and_redelivered_records():
    final = log("v0", "v1", "v2")
    ok = group_history(("owns", "a", 1, [0]), ("process", "a", [(0, 0), (0, 1)]), ("process", "b", [(0, 2)]))
    assert check_consumption(ok, final) == []
    twice = group_history(("owns", "a", 1, [0]), ("process", "a", [(0, 0), (0, 1), (0, 2)]),
                          ("process", "b", [(0, 1)]))
    assert [v.name for v in check_consumption(twice, final)] == ["redelivered"]
    missing = group_history(("owns", "a", 1, [0]), ("process", "a", [(0, 0), (0, 2)]))
    found = check_consumption(missing, final)
    assert [v.name for v in found] == ["unseen"] and "t-0@1" in found[0].detail
    # a topic no group consumed is nobody's loss
    assert check_consumption(group_history(("process", "a", [(0, 0)])), final) == []


from kafkaproof.properties.availability import GRACE_MS, PATIENCE_MS, check_availability  # noqa: E402
from kafkaproof.properties.delivery import check_delivery  # noqa: E402
from kafkaproof.properties.history import NEMESIS  # noqa: E402


def test_failed_send_is_lost_only_when_its_record_is_not_in_the_log():
    h = history(*sent("p", "a", None, type_="fail"), *sent("p", "b", None, type_="fail"), *sent("p", "c", 0))
    found = check_delivery(h, log("c", "b"))  # "b" failed ambiguously yet landed: no loss
    assert [v.ops[0].value for v in found] == ["a"]
    assert check_delivery(h, log("a", "b", "c")) == []


def _outage(acked_after: bool, down_ms: int = GRACE_MS + 2 * PATIENCE_MS, other_fault: bool = False) -> History:
    h = History()
    h.add(0, NEMESIS, "info", "crash", value="broker-2")
    if other_fault:
        h.add(1, NEMESIS, "info", "partition", value="[['broker-0'], ['broker-1']]")
    at = GRACE_MS + 100
    h.add(at, "p", "invoke", "send", topic="t", value="v")
    if acked_after:
        h.add(at + 50, "p", "ok", "send", topic="t", value="v", partition=0, offset=0)
    h.add(down_ms, NEMESIS, "info", "restart", value="broker-2")
    return h


def test_unavailable_when_a_single_long_failure_blocks_writes():
    found = check_availability(_outage(acked_after=False))
    assert [v.name for v in found] == ["unavailable"] and found[0].ops[1].value == "v"
    assert check_availability(_outage(acked_after=True)) == []
    # not judged: too short a failure, or another fault that explains the silence
    assert check_availability(_outage(acked_after=False, down_ms=GRACE_MS + PATIENCE_MS - 1)) == []
    assert check_availability(_outage(acked_after=False, other_fault=True)) == []
