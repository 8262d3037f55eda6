"""Transactions (KIP-98) and their defence (KIP-890): the broker's producer state, LSO and
aborted-transaction index; the coordinator; the transactional producer; read_committed
consumers; zombies; and the pre-KIP-890 anomalies that delayed markers cause."""

import hashlib

import pytest
from kafkaproof.impl.broker.producer_state import ProducerStateManager
from kafkaproof.impl.client.config import ProducerConfig
from kafkaproof.impl.client.transactions import FATAL, TransactionError
from kafkaproof.impl.config import ConfigError
from kafkaproof.impl.coordinator.transaction import COMPLETE_COMMIT
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.messages import TopicPartition
from kafkaproof.impl.protocol.records import (
    ControlRecordType,
    SimpleRecord,
    encode_batch,
    parse_header,
)
from kafkaproof.impl.sim.cluster import Cluster
from kafkaproof.impl.sim.txn_app import LATE_MARKER, late_marker
from kafkaproof.impl.storage.disk import SimDisk
from kafkaproof.impl.storage.log import Log
from kafkaproof.properties import check_all

T0, T1 = TopicPartition("t", 0), TopicPartition("t", 1)
FAST = {"transaction.state.log.num.partitions": "3", "offsets.topic.num.partitions": "3",
        "group.initial.rebalance.delay.ms": "0"}


def cluster(seed=1, **broker) -> Cluster:
    c = Cluster(seed=seed, broker_props={**FAST, **broker})
    c.create_topic("t", 2, 3)
    return c


def ready_producer(c: Cluster, tid="tx", name="p", **props):
    p = c.producer(name, {"transactional.id": tid, **props}, process="app")
    results = []
    p.init_transactions(results.append)
    c.run_until(lambda: results, timeout_ms=10_000)
    assert results == [ErrorCode.NONE]
    return p


def verdict(c: Cluster, tps=(T0, T1)) -> list[str]:
    committed = {tuple(tp): c.committed(tp) for tp in tps}
    return [v.name for v in check_all(c.history, committed)["transactions"]]


def values(c: Cluster, tp: TopicPartition) -> list[str]:
    return [v for _, _, v in c.committed(tp)]


def one_transaction(c: Cluster, p, value: bytes, commit: bool) -> None:
    p.begin_transaction()
    p.send("t", b"a", value)
    c.run_for(200)
    (p.commit_transaction if commit else p.abort_transaction)()
    c.run_for(1000)


# -- the broker's side ------------------------------------------------------------------------


def header(pid=7, epoch=0, seq=0, n=1, txn=True, offset=0):
    data = bytearray(encode_batch([SimpleRecord(b"v")] * n, producer_id=pid, producer_epoch=epoch,
                                  base_sequence=seq, is_transactional=txn))
    data[0:8] = offset.to_bytes(8, "big")
    return parse_header(bytes(data))


def test_producer_state_opens_and_ends_transactions():
    s = ProducerStateManager()
    s.update(header(offset=10))
    s.update(header(seq=1, offset=11))
    assert s.first_unstable_offset() == 10 and s.in_transaction(7, 0)
    done = s.update(header(seq=-1, offset=12)._replace(attributes=0x30), (ControlRecordType.ABORT, 0))
    assert (done.first_offset, done.marker_offset, done.aborted) == (10, 12, True)
    assert s.first_unstable_offset() is None


def test_marker_epochs_kip890_strict_legacy_lenient():
    s = ProducerStateManager()
    s.update(header(epoch=3, offset=0))  # an open transaction at epoch 3
    s.check_marker(7, 3, 0, bumped=False)  # before KIP-890: the data's own epoch ends it
    with pytest.raises(KafkaError) as e:
        s.check_marker(7, 3, 0, bumped=True)  # KIP-890: a marker must carry a newer epoch
    assert e.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
    s.check_marker(7, 4, 0, bumped=True)
    s.update(header(epoch=4, seq=-1, offset=1)._replace(attributes=0x30), (ControlRecordType.COMMIT, 0))
    s.check_marker(7, 4, 0, bumped=True)  # nothing open: a retried marker is harmless
    with pytest.raises(KafkaError):
        s.check_marker(7, 4, -5, bumped=True)  # from a deposed coordinator


def test_txnindex_files_follow_the_log():
    disk = SimDisk()
    log = Log.open(disk, "t-0")
    from kafkaproof.impl.storage.txn_index import AbortedTxn

    log.append_as_leader(encode_batch([SimpleRecord(b"a")] * 5), 0)
    log.append_aborted(AbortedTxn(7, 1, 4, 1))
    assert "00000000000000000000.txnindex" in disk.listdir("t-0")
    assert log.aborted_transactions(0, 5) == [AbortedTxn(7, 1, 4, 1)]
    assert log.aborted_transactions(5, 9) == []  # ended before the range
    log.truncate_to(3)
    assert log.aborted_transactions(0, 5) == []  # the marker was cut


def test_clients_may_not_write_control_batches():
    c = cluster()
    from kafkaproof.impl.protocol.records import control_batch

    raw = control_batch(ControlRecordType.COMMIT, producer_id=1, producer_epoch=0, coordinator_epoch=0, timestamp=0)
    with pytest.raises(KafkaError) as e:
        c.broker(c.leader(T0)).partitions[T0].append_as_leader(raw, -1, 0)
    assert e.value.code == ErrorCode.INVALID_RECORD


# -- the protocol end to end --------------------------------------------------------------------


def test_read_committed_sees_only_committed_and_lso_waits_for_open_transactions():
    c = cluster()
    p = ready_producer(c)
    one_transaction(c, p, b"kept", commit=True)
    one_transaction(c, p, b"dropped", commit=False)
    p.begin_transaction()
    p.send("t", b"a", b"open")
    c.run_for(500)
    tp = T0 if values(c, T0) else T1
    part = c.broker(c.leader(tp)).partitions[tp]
    assert part.lso < part.hw, "an open transaction holds the LSO back"
    assert values(c, tp) == ["kept"]
    committed = c.consumer("rc", {"isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    uncommitted = c.consumer("ru", {"auto.offset.reset": "earliest"})
    got = {"rc": [], "ru": []}
    for name, cons in (("rc", committed), ("ru", uncommitted)):
        cons.assign([T0, T1])
        c.every(50, lambda cons=cons, name=name: got[name].extend(r.value for _, r in cons.poll()), until=c.now + 2000)
    c.run_for(2500)
    assert got["rc"] == [b"kept"]
    assert got["ru"] == [b"kept", b"dropped", b"open"]


def test_coordinator_failover_finishes_the_commit():
    c = cluster()
    p = ready_producer(c)
    p.begin_transaction()
    for i in range(6):
        p.send("t", b"k%d" % i, b"v%d" % i)
    done = []
    p.commit_transaction(done.append)
    coordinator = c.leader(c.broker(0).txns.tp_for("tx"))
    c.run_until(lambda: done, timeout_ms=5000)
    c.crash(m.broker_node(coordinator))  # right after PrepareCommit: markers may be half sent
    c.run_for(15_000)
    c.restart(m.broker_node(coordinator))
    c.run_for(5000)
    assert done == [ErrorCode.NONE]
    assert sorted(values(c, T0) + values(c, T1)) == [f"v{i}" for i in range(6)]
    new = c.broker(c.leader(c.broker(0).txns.tp_for("tx"))).txns.txns["tx"]
    assert new.state == COMPLETE_COMMIT
    assert verdict(c) == []


def test_a_zombie_instance_is_fenced_and_its_writes_never_show():
    c = cluster()
    old = ready_producer(c, name="old")
    old.begin_transaction()
    old.send("t", b"a", b"zombie-1")
    c.run_for(500)
    new = ready_producer(c, name="new")  # same transactional.id: a new epoch, the old txn aborted
    assert new.proc.producer_epoch > old.proc.producer_epoch
    old.send("t", b"a", b"zombie-2")
    results = []
    old.commit_transaction(results.append)
    c.run_for(3000)
    assert old.proc.txn.state == FATAL and results and results[0] != ErrorCode.NONE
    with pytest.raises(TransactionError):
        old.begin_transaction()
    new.begin_transaction()
    new.send("t", b"a", b"fresh")
    new.commit_transaction()
    c.run_for(2000)
    assert values(c, T0) + values(c, T1) == ["fresh"]
    assert verdict(c) == []


def test_transaction_timeout_aborts_and_fences_the_producer():
    c = cluster(**{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000"})
    p = ready_producer(c, **{"transaction.timeout.ms": "3000"})
    p.begin_transaction()
    p.send("t", b"a", b"late")
    c.run_for(6000)  # the application stalls past transaction.timeout.ms
    tp = T0 if c.broker(c.leader(T0)).partitions[T0].log.log_end_offset else T1
    part = c.broker(c.leader(tp)).partitions[tp]
    assert part.lso == part.hw, "the coordinator aborted it: nothing holds the LSO"
    results = []
    p.commit_transaction(results.append)
    c.run_for(2000)
    assert results == [ErrorCode.PRODUCER_FENCED] and p.proc.txn.state == FATAL
    assert values(c, tp) == []


@pytest.mark.parametrize("legacy", [False, True])
def test_kip890_verification_refuses_a_write_outside_the_transaction(legacy):
    """A transactional write to a partition never added (what a late write of an ended
    transaction looks like): verified and refused with KIP-890; before it, accepted, and
    it opens a transaction no coordinator will ever end (a hanging transaction)."""
    c = cluster(**{"legacy.transactions.without.kip890": str(legacy).lower()})
    p = ready_producer(c)
    leader = c.leader(T0)
    raw = encode_batch([SimpleRecord(b"stray")], producer_id=p.proc.producer_id,
                       producer_epoch=p.proc.producer_epoch, base_sequence=0, is_transactional=True)
    answers = []
    c.producer("probe")  # a node to answer to
    broker = c.broker(leader)
    fx = broker.handle("producer-probe", m.ProduceRequest(99, T0, -1, 5000, raw, "tx"), c.now)
    c._apply(m.broker_node(leader), fx)
    original = c.procs["producer-probe"].handle
    c.procs["producer-probe"].handle = lambda src, msg, now: answers.append(msg) or original(src, msg, now)
    c.run_for(2000)
    part = c.broker(leader).partitions[T0]
    if legacy:
        assert answers[0].error == ErrorCode.NONE
        assert part.lso < part.hw, "a hanging transaction blocks read_committed consumers"
    else:
        assert answers[0].error == ErrorCode.INVALID_TXN_STATE
        assert part.lso == part.hw


def test_bad_transactional_input_gets_clear_errors():
    with pytest.raises(ConfigError, match="transactional.id"):
        ProducerConfig.from_properties({"transactional.id": "x", "enable.idempotence": "false"})
    with pytest.raises(ConfigError, match="transactional.id"):
        ProducerConfig.from_properties({"transactional.id": "x", "acks": "1"})
    c = cluster()
    p = c.producer("p", {"transactional.id": "tx"})
    with pytest.raises(TransactionError, match="uninitialized"):
        p.begin_transaction()
    with pytest.raises(TransactionError):
        p.send("t", None, b"outside")
    bad = c.producer("q", {"transactional.id": "ty", "transaction.timeout.ms": str(10**9)})
    results = []
    bad.init_transactions(results.append)
    c.run_for(3000)
    assert results == [ErrorCode.INVALID_TRANSACTION_TIMEOUT]


# -- pre-KIP-890: a marker that arrives late ends the next transaction ----------------------------


@pytest.mark.parametrize("anomaly", sorted(LATE_MARKER))
def test_a_late_marker_breaks_transactions_only_without_kip890(anomaly):
    assert late_marker(anomaly, kip890=False)[1] == [anomaly]
    assert late_marker(anomaly, kip890=True)[1] == []


def test_same_seed_same_transactional_run():
    def one() -> str:
        c = cluster(seed=5)
        p = ready_producer(c)
        for i in range(5):
            p.begin_transaction()
            p.send("t", b"k%d" % i, b"v%d" % i)
            (p.commit_transaction if i % 2 else p.abort_transaction)()
            c.run_for(300)
        return hashlib.sha256(c.history.to_jsonl().encode()).hexdigest()

    assert one() == one()


def test_coordinator_does_not_answer_for_ids_it_does_not_own():
    c = cluster()
    b = c.broker(0)
    tid = next(t for t in ("a", "b", "c", "d", "e", "f") if c.leader(b.txns.tp_for(t)) != 0)
    fx = m.Effects()
    b.txns.init_producer_id("client", m.InitProducerIdRequest(1, tid, 60_000), c.now, fx)
    assert fx.items[0].message.error == ErrorCode.NOT_COORDINATOR


# -- exactly-once processing: a zombie member (KIP-447) -------------------------------------------


def zombie_member() -> dict[str, list[str]]:
    """Two exactly-once members; the owner of the input is cut off in mid-transaction, the
    other takes over and processes the same records; then the owner comes back and tries
    to commit its transaction with its old group generation."""
    from kafkaproof.impl.sim.consumer_app import ConsumerApp

    c = cluster(seed=2)
    c.create_topic("in", 1, 3)
    c.create_topic("in-out", 1, 3)
    props = {"group.id": "eos", "auto.offset.reset": "earliest", "session.timeout.ms": "6000",
             "heartbeat.interval.ms": "1000"}
    writer = c.producer("w")
    a, b = (ConsumerApp(c, name, "transactional", props, topics=["in"]) for name in ("a", "b"))
    c.run_for(3000)
    owner = a if a.consumer.proc.group.owned else b
    mine = {owner.consumer.node, owner.producer.node}

    def cut() -> None:
        owner.on_transaction = None
        c.partition(sorted(mine), sorted(n for n in c.procs if n not in mine))

    owner.on_transaction = cut
    for i in range(5):
        writer.send("in", None, b"v%d" % i)
    c.run_for(20_000)  # the other member owns the input now and has processed it
    c.heal()
    c.run_for(60_000)
    tps = [TopicPartition("in", 0), TopicPartition("in-out", 0)]
    verdict = check_all(c.history, {tuple(tp): c.committed(tp) for tp in tps}, c.group_offsets("eos"))
    assert len(c.committed(TopicPartition("in-out", 0))) >= 5  # the work was done
    return {g: [v.name for v in vs] for g, vs in verdict.items()
            if vs and g in ("transactions", "exactly-once-processing", "exactly-once")}


def test_a_zombie_exactly_once_member_is_fenced_by_its_generation():
    assert zombie_member() == {}


def test_mutation_transactional_commits_without_generation_fencing_duplicate(monkeypatch):
    from dataclasses import replace

    from kafkaproof.impl.coordinator.group import GroupCoordinator

    original = GroupCoordinator.txn_commit
    monkeypatch.setattr(GroupCoordinator, "txn_commit",
                        lambda self, src, req, now, fx: original(self, src, replace(req, generation=-1), now, fx))
    assert "eos-duplicate" in zombie_member().get("exactly-once-processing", [])


def test_a_damaged_txnindex_is_rebuilt_from_the_log():
    c = cluster()
    p = ready_producer(c)
    one_transaction(c, p, b"aborted", commit=False)
    one_transaction(c, p, b"kept", commit=True)
    tp = T0 if values(c, T0) else T1
    b = c.leader(tp)
    path = f"{tp}/00000000000000000000.txnindex"
    before = c.broker(b).partitions[tp].log.aborted_transactions(0, 100)
    assert len(before) == 1 and c.disks[b].size(path) == 34  # one AbortedTxn entry, Kafka's layout
    c.crash(m.broker_node(b))
    c.disks[b].truncate(path, 0)
    c.disks[b].append(path, b"\xff" * 40)  # garbage, and a torn last entry
    c.restart(m.broker_node(b))
    c.run_for(10_000)
    after = c.broker(b).partitions[tp].log.aborted_transactions(0, 100)
    assert [t[:3] for t in after] == [t[:3] for t in before]
    assert values(c, tp) == ["kept"]


# -- the transaction log's own settings -----------------------------------------------------------


def test_transactional_id_expiration_forgets_an_idle_id_and_its_producer_id():
    """transactional.id.expiration.ms: an id with no transaction open and no change for that
    long is forgotten (a tombstone in __transaction_state, so a coordinator that loads the
    log later forgets it too); the producer still holding its producer id is refused
    (INVALID_PRODUCER_ID_MAPPING: fenced, it must start again) and a new instance gets a new
    producer id. An open transaction keeps its id however long it stays open."""
    c = cluster(**{"transactional.id.expiration.ms": "5000",
                   "transaction.remove.expired.transaction.cleanup.interval.ms": "1000"})
    p = ready_producer(c)
    one_transaction(c, p, b"kept", commit=True)
    idle = ready_producer(c, tid="idle-but-open", name="q")
    idle.begin_transaction()
    idle.send("t", b"a", b"open")
    c.run_for(1000)
    pid = p.proc.producer_id
    coordinator = next(b for b in c.broker_ids if "tx" in c.broker(b).txns.txns)
    c.run_for(8000)
    assert "tx" not in c.broker(coordinator).txns.txns
    holder = next(b for b in c.broker_ids if "idle-but-open" in c.broker(b).txns.txns)
    assert c.broker(holder).txns.txns["idle-but-open"].state == "Ongoing"  # (transaction.timeout.ms: 60 s)
    p.begin_transaction()
    p.send("t", b"a", b"after-expiry")
    done = []
    p.commit_transaction(done.append)
    c.run_until(lambda: done, timeout_ms=10_000)
    assert done != [ErrorCode.NONE] and p.proc.txn.state == FATAL  # (the client reports it fenced)
    again = ready_producer(c, name="p2")
    assert again.proc.producer_id != pid
    c.crash(f"broker-{coordinator}")  # the next coordinator loads the tombstone
    c.run_for(15_000)
    assert all(c.broker(b).txns.txns.get("tx") is None or c.broker(b).txns.txns["tx"].producer_id != pid
               for b in c.broker_ids if f"broker-{b}" not in c.down)


@pytest.mark.parametrize("min_isr, ok", [(None, False), ("1", True)])
def test_transaction_state_log_min_isr_guards_the_coordinators_writes(min_isr, ok):
    """transaction.state.log.min.isr (2, Kafka's default) is __transaction_state's
    min.insync.replicas: with two of three brokers down the coordinator cannot write a
    transaction's state, and a producer cannot even start; at 1 it can."""
    c = cluster(**({"transaction.state.log.min.isr": min_isr} if min_isr else {}))
    c.producer("warm", {"transactional.id": "x"})  # __transaction_state is created on first use
    c.run_for(2000)
    assert c.store.read().topic_configs["__transaction_state"]["min.insync.replicas"] == (min_isr or "2")
    coordinator_tp = TopicPartition("__transaction_state", c.broker(0).txns.tp_for("tx").partition)
    leader = c.leader(coordinator_tp)
    for b in c.broker_ids:
        if b != leader:
            c.crash(f"broker-{b}")
    c.run_for(15_000)
    p = c.producer("p", {"transactional.id": "tx"})
    results = []
    p.init_transactions(results.append)
    c.run_until(lambda: results, timeout_ms=20_000)
    assert (results == [ErrorCode.NONE]) == ok
