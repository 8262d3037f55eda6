"""Hypothesis profiles: `ci` (default) is derandomised and bounded so `make test` is
reproducible and fast; `nightly` runs long randomised campaigns."""

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    # database=None: a local example database (filled by nightly runs) must not make
    # `make test` here differ from CI's fresh clone.
    "ci", derandomize=True, database=None, max_examples=60, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "nightly", max_examples=2000, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=20, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Hypothesis (6.1xx) mixes literal constants from every loaded local module into its
# draws, so a derandomised campaign drew other examples in a full run than alone (other
# modules are imported), and a new module anywhere changed them. Without that pool a
# test's examples depend on the test alone. (Private API: if it moves, nothing breaks,
# the examples merely vary with the imports again.)
try:
    from hypothesis.internal.conjecture import providers as _providers
    from hypothesis.internal.constants_ast import Constants as _Constants

    _providers._get_local_constants = _Constants
except ImportError:
    pass


def hw_from_leader_alone(self):
    """Mutation: HW := the leader's own log end, ignoring the followers, so acks=all is
    answered before replication. Several suites must catch it; defined once here."""
    if self.is_leader and self.log.log_end_offset > self.hw:
        self.hw = self.log.log_end_offset
        return True
    return False


@pytest.fixture
def broken_hw(monkeypatch):
    from kafkaproof.impl.broker.partition import Partition

    monkeypatch.setattr(Partition, "maybe_advance_hw", hw_from_leader_alone)


# Headless Chromium (Debian's package, which .ci/run installs) through Playwright, for the
# pictures' tests: never Playwright's own browser download (no network here).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    """A function opening a page: page(path) -> (page, errors), the page drawn (its body's
    data-ready or data-error set) and every JavaScript error and console error collected."""
    import shutil

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("Chromium is not installed (.ci/run installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)

        def open_page(path, width: int = 1500, height: int = 1000):
            page = chromium.new_page(viewport={"width": width, "height": height})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
            page.goto(path.resolve().as_uri())
            page.wait_for_function("document.body.dataset.ready || document.body.dataset.error", timeout=30_000)
            return page, errors

        try:
            yield open_page
        finally:
            chromium.close()


ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"  # Debian's zookeeper package (.ci/run installs it)


@pytest.fixture(scope="session")
def zookeeper_server(tmp_path_factory):
    """A standalone ZooKeeper (Debian's package, run with Java) on a free port: its
    HOST:PORT. Each test takes its own chroot (`zookeeper` fixture)."""
    import shutil
    import socket
    import subprocess
    import time

    if not os.path.exists(ZOOKEEPER_JAR) or shutil.which("java") is None:
        pytest.skip("ZooKeeper is not installed (.ci/run installs Debian's zookeeper package)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tmp_path_factory.mktemp("zookeeper")
    log = open(data / "server.log", "w")
    server = subprocess.Popen(["java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false", "-cp", ZOOKEEPER_JAR,
                               "org.apache.zookeeper.server.ZooKeeperServerMain", str(port), str(data / "data"),
                               "500"],  # tickTime: sessions expire on time (the default 3000 sets a 6 s floor)
                              stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"srvr")  # a four-letter word: answered once the server serves
                if c.recv(64).startswith(b"Zookeeper version"):
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"ZooKeeper did not start (see {data / 'server.log'})")
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    server.terminate()
    server.wait(10)
    log.close()


@pytest.fixture
def zookeeper(zookeeper_server, request):
    """zookeeper://HOST:PORT/CHROOT: a ZooKeeper namespace of this test's own."""
    import re

    return f"zookeeper://{zookeeper_server}/{re.sub(r'[^A-Za-z0-9]+', '-', request.node.name)}"


@pytest.fixture(scope="session")
def kcat_scram_env(tmp_path_factory):
    """An environment in which Debian's kcat runs on the librdkafka the confluent-kafka wheel
    bundles (same C ABI; 2.6.1+ fixed SCRAM's final nonce, CVE-2024-56128): kcat's own
    librdkafka 2.0.2 repeats the client nonce, which Kafka 4 and serve refuse."""
    import glob

    import confluent_kafka

    [bundled] = glob.glob(os.path.join(os.path.dirname(confluent_kafka.__file__) + ".libs", "librdkafka*.so*")) or [None]
    if bundled is None:
        pytest.skip("confluent-kafka's wheel bundles no librdkafka here")
    d = tmp_path_factory.mktemp("librdkafka")
    os.symlink(bundled, d / "librdkafka.so.1")
    return {**os.environ, "LD_LIBRARY_PATH": str(d)}


# Seconds the slowest tests took on the 2-core machine (make test's --durations, 2026-12-05),
# by node id prefix. `make test` runs two workers with --dist worksteal, which hands each a
# contiguous half of the collection and lets an idle one steal from the other's tail: a long
# test left near the end of a queue keeps one core busy while the other waits. So each half
# starts with its share of these (whole prefixes, split greedily by time: a module's tests
# stay on one worker, or its module fixture would be built twice), then its share of the
# rest. Only the order changes; a stale table only packs less well.
SLOW_SECONDS = {
    "tests/test_agreement.py::test_no_command_contradicts": 67, "tests/test_unsafe.py::test_the_eight_practices": 58,
    "tests/test_wire.py::test_a_partitioned_leader": 45, "tests/test_verify.py::test_verifier_and_simulation": 41,
    "tests/test_cli.py::test_demo_runs": 41, "tests/test_unsafe.py::test_check_verify_and_hunt_each_find_it": 25,
    "tests/test_cluster_stateful.py::test_safe_configurations": 25, "tests/test_txn_campaign.py": 20,
    "tests/test_unsafe.py::test_eligible_leader_replicas": 25, "tests/test_process_faults.py": 22,
    "tests/test_check.py": 2, "tests/test_cluster_stateful.py::test_unsafe_configuration": 18,
    "tests/test_wire.py::test_the_safe_configuration": 20, "tests/test_zookeeper.py::test_the_controller_killed": 20,
    "tests/test_wire.py::test_acks_1_with_unclean": 18, "tests/test_unsafe.py::test_the_table_quotes": 18,
    "tests/test_verify.py::test_synthesis_answers": 17, "tests/mutations/test_mutations.py": 15,
}


def pytest_collection_modifyitems(config, items):
    groups: dict[str, list] = {}
    rest = []
    for it in items:
        prefix = next((p for p in SLOW_SECONDS if it.nodeid.startswith(p)), None)
        (groups.setdefault(prefix, []) if prefix else rest).append(it)
    halves: tuple[list, list] = ([], [])
    load = [0, 0]
    for prefix, group in sorted(groups.items(), key=lambda g: SLOW_SECONDS[g[0]] * len(g[1]), reverse=True):
        i = 0 if load[0] <= load[1] else 1  # (the heaviest first, each to the half with less so far)
        halves[i].extend(group)
        load[i] += SLOW_SECONDS[prefix] * len(group)
    cut = max(0, len(items) // 2 - len(halves[0]))
    items[:] = halves[0] + rest[:cut] + halves[1] + rest[cut:]
