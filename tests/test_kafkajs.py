"""KafkaJS (a Node.js client written without librdkafka or Kafka's Java code) against
`serve`: per-topic configs, an unknown config refused, DeleteRecords, a reassignment,
a consumer group and DeleteGroups (tests/kafkajs_admin.js). The fixture installs KafkaJS
with npm into a cache directory; .ci/run installs Node.js where it is missing."""

import json
import os
import shutil
import subprocess

import pytest
from kafkaproof.impl.net.server import EmbeddedCluster

KAFKAJS = "kafkajs@2.2.4"
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "kafkaproof-node")


@pytest.fixture(scope="module")
def node_modules():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed (.ci/run installs them on CI)")
    if not os.path.isdir(os.path.join(CACHE, "node_modules", "kafkajs")):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", CACHE, KAFKAJS],
                       check=True, timeout=300)
    return os.path.join(CACHE, "node_modules")


def test_kafkajs_admin_calls_against_serve(tmp_path, node_modules):
    with EmbeddedCluster(str(tmp_path), brokers=3, port=0,
                         props={"offsets.topic.replication.factor": "1", "group.initial.rebalance.delay.ms": "0"}) as c:
        script = os.path.join(os.path.dirname(__file__), "kafkajs_admin.js")
        out = subprocess.run(["node", script, c.bootstrap], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "NODE_PATH": node_modules})
        assert out.returncode == 0, out.stderr[-3000:]
        seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["cluster"] == [0, 1, 2]
    # AlterConfigs replaced the whole set: retention.ms is back to the broker's 7 days.
    assert seen["configs"] == {"retention.ms": "604800000", "cleanup.policy": "compact"}, seen
    assert seen["badConfig"] == "INVALID_CONFIG", seen
    assert seen["lowAfterDelete"] == "4", seen
    assert len(seen["moved"]) == 2, seen  # from one broker to the two others
    assert seen["consumed"] >= 2
    assert seen["groupsBefore"] == ["js-group"] and seen["groupsAfter"] == []
