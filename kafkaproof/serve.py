"""`kafkaproof serve`: the brokers, controller and coordinators on localhost for real
Kafka clients (kafka-python, confluent-kafka, kcat, Java), until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from kafkaproof.impl.config import ConfigError, load_properties, parse_override


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--brokers", type=int, default=1, help="brokers on consecutive ports (default 1)")
    p.add_argument("--port", type=int, default=9092, help="the first broker's port (default 9092; 0: any free)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on and advertise")
    p.add_argument("--data-dir", default="kafkaproof-data", help="segment files and metadata live here")
    p.add_argument("--config", help="server.properties (Kafka's keys)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one broker key")
    p.add_argument("--topic", action="append", default=[], metavar="NAME[:PARTITIONS[:RF]]",
                   help="create this topic at start if it does not exist (repeatable)")
    p.add_argument("--users", metavar="FILE", help="the users a SASL listener (SASL_PLAINTEXT, SASL_SSL)"
                   " authenticates (PLAIN, SCRAM-SHA-256/512): Kafka's JAAS file (user_NAME=\"PASSWORD\" options, as in"
                   " java.security.auth.login.config) or NAME=PASSWORD lines")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING")
    one = p.add_argument_group("one process per broker (fault tests)")
    one.add_argument("--controller-only", action="store_true",
                     help="run just the controller; brokers find it at --port")
    one.add_argument("--broker-id", type=int, help="run just this broker (with --controller or --metadata)")
    one.add_argument("--controller", metavar="HOST:PORT", help="where the --controller-only process listens")
    one.add_argument("--metadata", metavar="zookeeper://HOST:PORT",
                     help="with --broker-id: keep the metadata in ZooKeeper, as Kafka <= 3.x (Kafka's"
                     " zookeeper.connect); every broker is a controller candidate, no --controller-only process")


def broker_props(config: str | None, sets: list[str]) -> dict:
    props: dict = load_properties(config) if config else {}
    for item in sets:
        key, value = parse_override(item)
        props[key] = (value, "--set")
    return props


def run(args: argparse.Namespace) -> int:
    from kafkaproof.impl.broker.config import BrokerConfig
    from kafkaproof.impl.net.server import BrokerProcess, ControllerProcess, EmbeddedCluster

    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.brokers < 1:
        print("kafkaproof serve: --brokers must be at least 1", file=sys.stderr)
        return 2
    try:
        props = broker_props(args.config, args.set)
        if args.metadata:
            props["zookeeper.connect"] = (args.metadata, "--metadata")
        zookeeper = BrokerConfig.from_properties(props).zookeeper_connect or None
        if args.broker_id is None and (args.controller or zookeeper):
            raise ConfigError("--controller and --metadata (zookeeper.connect) need --broker-id: one broker per process")
        if args.broker_id is not None and (args.controller is None) == (zookeeper is None):
            raise ConfigError("--broker-id needs where the metadata is: --controller HOST:PORT (a --controller-only"
                              " process) or --metadata zookeeper://HOST:PORT")
        topics = [_topic(t) for t in args.topic]
        users = _users(args.users) if args.users else None
        if args.controller_only:
            cluster = ControllerProcess(args.data_dir, args.port, props, host=args.host)
        elif args.broker_id is not None:
            controller = None
            if args.controller:
                host, _, port = args.controller.rpartition(":")
                if not host or not port.isdigit():
                    raise ConfigError(f"--controller {args.controller!r}: expected HOST:PORT")
                controller = (host, int(port))
            cluster = BrokerProcess(args.broker_id, controller, args.data_dir, args.port, props, host=args.host,
                                    users=users, zookeeper=zookeeper)
        else:
            cluster = EmbeddedCluster(args.data_dir, args.brokers, args.port, props, host=args.host, users=users)
    except ConfigError as e:
        print(f"kafkaproof serve: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"kafkaproof serve: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr)
        return 2
    except ValueError as e:  # unreadable metadata in the data directory
        print(f"kafkaproof serve: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    cluster.start()
    if isinstance(cluster, EmbeddedCluster):
        for name, partitions, rf in topics:
            if not cluster.has_topic(name):
                cluster.create_topic(name, partitions, rf)
        print(f"kafkaproof serve: bootstrap.servers={cluster.bootstrap}", flush=True)
    elif isinstance(cluster, ControllerProcess):
        print(f"kafkaproof serve: controller at {args.host}:{cluster.port}", flush=True)
    else:
        print(f"kafkaproof serve: broker {args.broker_id} at {args.host}:{cluster.reactor.port}", flush=True)
    stop.wait()
    logging.getLogger("kafkaproof.serve").info("stopping: flushing logs and checkpoints")
    cluster.stop()
    return 0


def _users(path: str) -> dict[str, str]:
    from kafkaproof.impl.net.sasl import parse_users

    try:
        with open(path) as f:
            return parse_users(f.read(), path)
    except OSError as e:
        raise ConfigError(f"--users {path}: {e.strerror}") from None


def _topic(spec: str) -> tuple[str, int, int | None]:
    parts = spec.split(":")
    try:
        return parts[0], int(parts[1]) if len(parts) > 1 else 1, int(parts[2]) if len(parts) > 2 else None
    except ValueError:
        raise ConfigError(f"--topic {spec!r}: expected NAME[:PARTITIONS[:REPLICATION_FACTOR]]") from None
