"""Broker: partition replicas, produce/fetch handling, purgatory, producer state."""
