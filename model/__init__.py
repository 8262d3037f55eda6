"""Reference state machine of Kafka's replication protocol (independent of impl/)."""
