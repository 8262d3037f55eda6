"""Kafka's wire-level vocabulary: error codes and RecordBatch v2."""
