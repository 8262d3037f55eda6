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

    def _next_corr(self) -> int:
        self._corr += 1
        return self._corr

    def _next_bootstrap(self) -> str:
        """Bootstrap brokers in turn, so one dead broker does not stall metadata."""
        node = self.bootstrap[self._bootstrap_i % len(self.bootstrap)]
        self._bootstrap_i += 1
        return node
