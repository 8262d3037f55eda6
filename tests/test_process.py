"""Every state machine has the one Process shape and routes through one table.

Checked against the source, so a timer set in code without a handler, or a return to
name-based dispatch (`getattr(self, "_on_" + ...)`), fails here rather than as a silently
dropped timer in some rare run.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest
from kafkaproof.impl.broker.broker import Broker
from kafkaproof.impl.broker.config import BrokerConfig
from kafkaproof.impl.client.config import ConsumerConfig, ProducerConfig
from kafkaproof.impl.client.consumer import Consumer
from kafkaproof.impl.client.producer import Producer
from kafkaproof.impl.controller.config import ControllerConfig
from kafkaproof.impl.controller.controller import Controller
from kafkaproof.impl.controller.store import SimMetadataStore
from kafkaproof.impl.protocol import messages as m
from kafkaproof.impl.protocol.errors import ErrorCode, KafkaError
from kafkaproof.impl.protocol.process import Process
from kafkaproof.impl.storage.disk import SimDisk

IMPL = Path(__file__).resolve().parent.parent / "impl"


def processes() -> dict[str, object]:
    rng = random.Random(0)
    return {
        "broker": Broker(0, BrokerConfig(), SimDisk(), [0]),
        "controller": Controller(0, ControllerConfig.of(BrokerConfig()), SimMetadataStore()),
        "producer": Producer("p", ProducerConfig(), ["broker-0"], rng),
        "consumer": Consumer("c", ConsumerConfig(group_id="g"), ["broker-0"], rng),
    }


# Which process runs the code in each file (the coordinators run inside the broker, the
# transaction manager inside the producer, group membership inside the consumer).
OWNER = {
    "broker/broker.py": "broker", "coordinator/group.py": "broker", "coordinator/transaction.py": "broker",
    "coordinator/state_log.py": "broker", "controller/controller.py": "controller",
    "client/producer.py": "producer", "client/transactions.py": "producer",
    "client/consumer.py": "consumer", "client/membership.py": "consumer",
}


def timer_kinds_set(path: Path) -> set[str]:
    """Kinds of the timers a file sets: `fx.timer(("kind", ...), at)`, and the kind a
    coordinator hands its StateLog (`StateLog(wake, timeout, "kind", ...)`)."""
    kinds = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in ("timer", "on_timer") and node.args:
            key = node.args[0]
            if isinstance(key, ast.Tuple) and key.elts and isinstance(key.elts[0], ast.Constant):
                kinds.add(key.elts[0].value)
        if isinstance(f, ast.Name) and f.id == "StateLog" and len(node.args) > 2:
            kinds.add(node.args[2].value)
    return kinds


def test_every_process_has_the_process_shape():
    for name, proc in processes().items():
        assert isinstance(proc, Process), name


def test_every_timer_set_in_the_code_has_a_handler_in_its_process():
    procs = processes()
    checked = 0
    for rel, owner in OWNER.items():
        kinds = timer_kinds_set(IMPL / rel)
        assert kinds or rel == "coordinator/state_log.py", f"no timers found in {rel}: the scan is broken"
        route = procs[owner]._route if owner == "broker" else procs[owner].route
        for kind in kinds:
            try:
                handler = route(kind)
            except KafkaError:
                handler = None
            assert handler is not None, f"{rel} sets a {kind!r} timer that {owner} does not handle"
            checked += 1
    assert checked >= 25, checked  # the scan found the timers (31 today)


def test_no_name_based_dispatch_is_left():
    for path in sorted(IMPL.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
                    and len(node.args) > 1 and isinstance(node.args[1], ast.BinOp)
                    and isinstance(node.args[1].left, ast.Constant) and str(node.args[1].left.value).startswith("_on_")):
                pytest.fail(f"{path.relative_to(IMPL)}:{node.lineno} dispatches by building a method name")


def test_a_message_no_server_handles_is_a_clear_error():
    procs = processes()
    for name in ("broker", "controller"):
        with pytest.raises(KafkaError) as e:
            procs[name].handle("client", m.ProduceResponse(1, m.TopicPartition("t", 0), ErrorCode.NONE, 0), 0)
        assert e.value.code == ErrorCode.INVALID_REQUEST and "ProduceResponse" in str(e.value), name
