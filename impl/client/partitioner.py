"""Partitioners: Kafka's default (murmur2 of the key), round-robin, random, or a callable.

Kafka's default for keyed records is `toPositive(murmur2(key)) % numPartitions`
(Utils.java); outputs here are identical, checked against Kafka's own test vectors.
Records without a key: Kafka 3.x uses the "uniform sticky" partitioner (KIP-794);
round-robin is the seed notes' 轮询 and what older clients did.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

SEED = 0x9747B28C


@functools.lru_cache(maxsize=4096)  # a pure function of the key; keys repeat a lot
def murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2: 32-bit signed result."""
    length = len(data)
    m, r = 0x5BD1E995, 24
    h = (SEED ^ length) & 0xFFFFFFFF
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> r
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = length % 4
    base = length - tail
    if tail == 3:
        h ^= data[base + 2] << 16
    if tail >= 2:
        h ^= data[base + 1] << 8
    if tail >= 1:
        h ^= data[base]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(n: int) -> int:
    return n & 0x7FFFFFFF


Partitioner = Callable[[str, bytes | None, int], int]


def default_partitioner(rng: random.Random) -> Partitioner:
    """murmur2 for keyed records; sticky-ish round robin for unkeyed ones."""
    rr = round_robin_partitioner()

    def choose(topic: str, key: bytes | None, n: int) -> int:
        return to_positive(murmur2(key)) % n if key is not None else rr(topic, key, n)

    return choose


def round_robin_partitioner() -> Partitioner:
    counters: dict[str, int] = {}

    def choose(topic: str, key: bytes | None, n: int) -> int:
        i = counters.get(topic, 0)
        counters[topic] = i + 1
        return i % n

    return choose


def random_partitioner(rng: random.Random) -> Partitioner:
    return lambda topic, key, n: rng.randrange(n)


def make_partitioner(name: str | Partitioner, rng: random.Random) -> Partitioner:
    if callable(name):
        return name
    choices = {"default": lambda: default_partitioner(rng), "round-robin": round_robin_partitioner,
               "random": lambda: random_partitioner(rng)}
    if name not in choices:
        raise ValueError(f"unknown partitioner {name!r}: one of {', '.join(choices)} or a callable")
    return choices[name]()
