"""kafkaproof: a Kafka-compatible broker in Python, a reference model, and a kit that
proves, breaks and explains Kafka's delivery guarantees."""

__version__ = "0.1.0"


ENGINE = ("Setup", "build_setup", "run_one", "run_check", "summarize")


def __getattr__(name: str):
    """`from kafkaproof import Cluster`: the simulated cluster, for users' own tests;
    `from kafkaproof import build_setup, run_one, run_check`: the engine every command
    runs through (both imported on first use, so the command line starts fast)."""
    if name == "Cluster":
        from kafkaproof.impl.sim.cluster import Cluster

        return Cluster
    if name in ENGINE:
        from kafkaproof.impl import engine

        return getattr(engine, name)
    raise AttributeError(f"module 'kafkaproof' has no attribute {name!r}")
