"""kafkaproof: a Kafka-compatible broker in Python, a reference model, and a kit that
proves, breaks and explains Kafka's delivery guarantees."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from kafkaproof import Cluster`: the simulated cluster, for users' own tests
    (imported on first use, so the command line starts fast)."""
    if name == "Cluster":
        from kafkaproof.impl.sim.cluster import Cluster

        return Cluster
    raise AttributeError(f"module 'kafkaproof' has no attribute {name!r}")
