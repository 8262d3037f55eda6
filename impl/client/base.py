"""What every client shares: its node name, the brokers it bootstraps from, and the
correlation ids that pair its requests with their responses."""

from __future__ import annotations

import random


class ClientBase:
    def __init__(self, node: str, bootstrap: list[str], rng: random.Random) -> None:
        if not bootstrap:
            raise ValueError("a client needs at least one bootstrap broker")
        self.node = node
        self.bootstrap = bootstrap
        self.rng = rng
        self._corr = 0
        self._bootstrap_i = 0
        # Brokers whose last request went unanswered (timed out or disconnected) until they
        # are heard from again: Kafka's NetworkClient.leastLoadedNode picks a ready
        # connection before one that is down or still connecting, so a broker whose machine
        # is off does not take the next metadata request for another request.timeout.ms.
        self._silent: set[str] = set()

    def _next_corr(self) -> int:
        self._corr += 1
        return self._corr

    def _next_bootstrap(self) -> str:
        """Bootstrap brokers in turn, so one dead broker does not stall metadata; those
        that went silent only when all have."""
        for _ in range(len(self.bootstrap)):
            node = self.bootstrap[self._bootstrap_i % len(self.bootstrap)]
            self._bootstrap_i += 1
            if node not in self._silent:
                return node
        node = self.bootstrap[self._bootstrap_i % len(self.bootstrap)]
        self._bootstrap_i += 1
        return node

    def _gave_up_on(self, node: str | None) -> None:
        if node is not None:
            self._silent.add(node)

    def _heard_from(self, node: str) -> None:
        self._silent.discard(node)
