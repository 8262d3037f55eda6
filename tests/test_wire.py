"""`kafkaproof test` (issue 18): Jepsen's Kafka workload over the wire against three
`serve` processes, judged from the history alone. The safe configuration shows no
anomaly through kills and pauses that did happen; acks=1 with unclean election, the
followers stopped and the leader killed, shows lost writes - the same harness, not blind."""

import json

import pytest
from junitparser import JUnitXml
from kafkaproof.properties.jepsen_kafka import analysis

from kafkaproof.cli import main
from kafkaproof.nemesis import CONTROLLER, Nemesis, Network, ProcessCluster, process_actions
from kafkaproof.workload import Options, create_topic, run

SAFE = ["min.insync.replicas=2", "replica.lag.time.max.ms=3000", "offsets.topic.num.partitions=3",
        "transaction.state.log.num.partitions=3"]
UNSAFE = ["min.insync.replicas=1", "unclean.leader.election.enable=true", "replica.lag.time.max.ms=1000",
          "broker.session.timeout.ms=3000"]


def test_the_safe_configuration_shows_no_anomaly_through_kills_and_pauses(tmp_path, capsys):
    code = main(["test", "--processes", "3", *[x for s in SAFE for x in ("--set", s)], "--nemesis", "kill,pause",
                 "--nemesis-interval", "3", "--duration", "16", "--crash-p", "0.03", "--sub-p", "0.1",
                 "--out", str(tmp_path / "out"), "--json", "--junit", str(tmp_path / "junit.xml")])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 0 and verdict["verdict"] == "VALID", verdict
    # Its report (index.html beside the history) and JUnit XML say the same.
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert (tmp_path / "out" / "index.html").exists() and report["verdicts"][0]["verdict"] == "VALID"
    assert report["runs"][0]["stats"]["rows"] and report["verdicts"][0]["dangers"] == verdict["dangers"]
    cases = [c for suite in JUnitXml.fromfile(str(tmp_path / "junit.xml")) for c in suite]
    assert [(c.name, c.is_passed) for c in cases] == [("Jepsen's Kafka analysis", True)]
    # not vacuous: faults of both kinds happened while clients worked, and they did work
    assert verdict["faults"].get("kill", 0) >= 1 and verdict["faults"].get("pause", 0) >= 1, verdict["faults"]
    assert verdict["judged"] >= 100 and verdict["failures"] == []
    assert verdict["dangers"]["leader-changed"] >= 1, verdict["dangers"]  # seen from outside, as clients see it
    ops = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()[1:]]
    assert any(op["f"] == "crash" for op in ops) and any(op["f"] == "assign" and op["type"] == "ok" for op in ops)
    killed = next(op["index"] for op in ops if op["f"] == "kill")
    assert any(op["f"] == "send" and op["type"] == "ok" and op["index"] > killed for op in ops)
    assert (tmp_path / "out" / "history.edn").read_text().startswith("; kafkaproof")


def test_acks_1_with_unclean_election_loses_writes_the_history_alone_shows(tmp_path):
    """The existing real-process harness's schedule (tests/test_process_faults.py) as a
    scripted nemesis: pause both followers until the leader alone is the ISR, kill the
    leader, resume them (one is elected uncleanly), restart the old leader. No polls until
    the final read: what the leader alone acknowledged is then never read, below offsets
    the final read returns - Jepsen's lost-write (a poll in between would have read some
    of it, which Jepsen calls inconsistent offsets instead)."""
    cluster = ProcessCluster(tmp_path / "cluster", UNSAFE, 3)
    try:
        options = Options(bootstrap=cluster.bootstrap, keys=1, concurrency=3, rate=60, duration=14, acks="1",
                          idempotence=False, sub_p=0.0, crash_p=0.0, poll_p=0.0, seed=1, op_timeout=5)
        create_topic(options)
        leader = leader_of(options)
        followers = [b for b in range(3) if b != leader]
        script = [(2.0, "pause", b) for b in followers] + [(6.0, "kill", leader)] + \
                 [(6.1, "resume", b) for b in followers] + [(11.0, "start", leader)]
        outcome = run(options, Nemesis([], list(range(3)), process_actions(cluster), script=script))
    finally:
        cluster.stop()
    found = analysis(outcome.ops, final_read=True)
    assert [op["f"] for op in outcome.ops if op["process"] == "nemesis"][:4] == ["pause", "pause", "kill", "resume"]
    assert "lost-write" in found.errors and "lost-write" in found.bad, sorted(found.errors)
    assert found.verdict[0] == "INVALID"


def leader_of(options: Options) -> int:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": options.bootstrap}).list_topics(options.topic, timeout=10) \
        .topics[options.topic].partitions[0].leader


NO_NAMESPACES = Network.unavailable()


@pytest.mark.skipif(NO_NAMESPACES is not None, reason=f"network namespaces: {NO_NAMESPACES}")
def test_a_partitioned_leader_acknowledging_alone_loses_writes_with_acks_1(tmp_path):
    """Each process in its own network namespace; the leader cut off from the controller
    and the other brokers (clients still reach it) for longer than its session: the
    controller elects a follower while the old leader goes on acknowledging acks=1
    writes, which it truncates when the partition heals - lost-write from the history
    alone, once writes after the heal take those offsets again (before that, the same
    values are only unseen). The same schedule with acks=all and min.insync.replicas=2
    loses nothing."""
    found = {}
    for acks, settings in (("1", UNSAFE), ("all", SAFE)):
        network = Network([CONTROLLER, 0, 1, 2], tag=f"kp{acks[0]}")
        cluster = ProcessCluster(tmp_path / f"acks-{acks}", settings, 3, network)
        try:
            options = Options(bootstrap=cluster.bootstrap, topic=f"cut-{acks}", keys=1, concurrency=3, rate=60,
                              duration=18, acks=acks, idempotence=acks == "all", sub_p=0.0, crash_p=0.0, poll_p=0.0,
                              seed=1, op_timeout=5)
            create_topic(options)
            leader = leader_of(options)
            outcome = run(options, Nemesis([], [0, 1, 2], process_actions(cluster),
                                           script=[(2.0, "partition", leader), (7.0, "heal", leader)]))
        finally:
            cluster.stop()
        assert [op["f"] for op in outcome.ops if op["process"] == "nemesis"] == ["partition", "heal"]
        found[acks] = analysis(outcome.ops, final_read=True)
    assert "lost-write" in found["1"].bad, sorted(found["1"].errors)
    assert found["all"].verdict[0] == "VALID" and found["all"].judged > 100, found["all"].errors


NO_NETEM = NO_NAMESPACES or Network.netem_unavailable()


@pytest.mark.skipif(NO_NETEM is not None, reason=f"slow: {NO_NETEM}")
def test_slow_delays_what_a_node_sends_and_fast_ends_it():
    import socket
    import subprocess
    import sys

    network = Network([CONTROLLER, 0], tag="kps")
    try:
        with socket.create_server((network.subnet + ".1", 0)) as server:  # a listener on the clients' side
            port = server.getsockname()[1]
            probe = [*network.exec_prefix(0), sys.executable, "-c",
                     "import socket, time; t = time.monotonic(); "
                     f"socket.create_connection(('{network.subnet}.1', {port}), timeout=5); "
                     "print(time.monotonic() - t)"]

            def connect_s() -> float:
                return float(subprocess.run(probe, capture_output=True, text=True, check=True).stdout)

            network.slow(0, mean_ms=300, jitter_ms=0)
            slowed = connect_s()
            network.fast(0)
            assert slowed >= 0.25 and connect_s() < 0.1, slowed
    finally:
        network.close()


@pytest.mark.parametrize("args, why", [
    (["--bootstrap-servers", "127.0.0.1:1"], "cannot reach a broker at 127.0.0.1:1"),
    (["--bootstrap-servers", "127.0.0.1:1", "--nemesis", "kill"], "say how to inject each fault"),
    (["--bootstrap-servers", "127.0.0.1:1", "--nemesis", "kill=docker kill {node}", "--nodes", "a"],
     "no command for start (to end kill)"),
    (["--processes", "3", "--nemesis", "flood"], "unknown fault flood"),
])
def test_bad_input_is_a_clear_error_with_exit_2(args, why, tmp_path, capsys):
    assert main(["test", *args, "--duration", "1", "--out", str(tmp_path / "out")]) == 2
    assert why in capsys.readouterr().err


@pytest.mark.parametrize("client, extra", [("kafka-python", []), ("confluent", ["--txn"])])
def test_the_second_client_and_transactions_over_the_wire(client, extra, tmp_path, capsys):
    """kafka-python through pauses, and librdkafka's transactions (read_committed polls,
    offsets committed in the transaction) through kills: VALID, with the faults done."""
    fault = "pause" if client == "kafka-python" else "kill"
    code = main(["test", "--processes", "3", *[x for s in SAFE for x in ("--set", s)], "--nemesis", fault,
                 "--nemesis-interval", "3", "--duration", "10", "--client", client, *extra,
                 "--out", str(tmp_path / "out"), "--json"])
    verdict = json.loads(capsys.readouterr().out)
    assert code == 0 and verdict["verdict"] == "VALID" and verdict["faults"].get(fault, 0) >= 1, verdict
    assert verdict["judged"] >= 30 and verdict["options"]["client"] == client
    if extra:
        ops = [json.loads(line) for line in (tmp_path / "out" / "history.jsonl").read_text().splitlines()[1:]]
        assert sum(op["f"] == "txn" and op["type"] == "ok" for op in ops) >= 20


def test_a_fault_command_that_fails_stops_the_nemesis_with_its_output():
    """--nemesis kill='...' on your cluster: a command that fails is not a fault that
    happened - the run stops with its output rather than judge faults it never had."""
    from kafkaproof.nemesis import NemesisError, command_actions

    record = []
    nemesis = Nemesis([], ["k1"], command_actions({"kill": "echo no such node {node} >&2; exit 3", "start": "true"}),
                      script=[(0.0, "kill", "k1")])
    nemesis.record = lambda f, node: record.append((f, node))
    nemesis.start()
    nemesis._thread.join(10)
    with pytest.raises(NemesisError, match="failed on k1 .exit 3.: no such node k1"):
        nemesis.stop()
    assert record == []  # never recorded as a fault that happened
