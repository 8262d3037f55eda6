"""kafkaproof: a Kafka-compatible broker in Python, a reference model, and a kit that
proves, breaks and explains Kafka's delivery guarantees."""

__version__ = "0.1.0"
