"""Segmented Kafka-format logs on a disk that can lie."""

from kafkaproof.impl.storage.config import LogConfig
from kafkaproof.impl.storage.disk import Disk, DiskError, RealDisk, SimDisk
from kafkaproof.impl.storage.log import AppendInfo, Log, LogDirError, RecoveryReport

__all__ = [
    "AppendInfo", "Disk", "DiskError", "Log", "LogConfig", "LogDirError", "RealDisk",
    "RecoveryReport", "SimDisk",
]
