"""History format and one checker per guarantee.

Every checker is a pure function of the history (plus, for durability and skips, the
final log read back after healing) returning `Violation`s with their witness ops.
"""

from __future__ import annotations

import contextlib
import gc

from kafkaproof.properties.availability import check_availability
from kafkaproof.properties.delivery import check_delivery
from kafkaproof.properties.duplicates import check_duplicates
from kafkaproof.properties.durability import Committed, check_durability
from kafkaproof.properties.groups import check_commits, check_consumption, check_group_exclusivity
from kafkaproof.properties.history import History
from kafkaproof.properties.monotonic import check_monotonic_reads
from kafkaproof.properties.order import check_send_order
from kafkaproof.properties.read_your_writes import check_read_your_writes
from kafkaproof.properties.transactions import check_processing, check_transactions
from kafkaproof.properties.violation import Violation

# guarantee -> the anomaly names that violate it (DESIGN.md's table)
CLUSTER_GUARANTEES = {
    "durability": ("lost-write", "inconsistent-offsets"),
    "delivery": ("failed-send",),
    "exactly-once": ("duplicate",),
    "read-your-writes": ("read-your-writes",),
    "monotonic-reads": ("nonmonotonic-poll", "poll-skip"),
    "partition-order": ("nonmonotonic-send",),
}
GROUP_GUARANTEES = {
    "group-exclusivity": ("shared-partition",),
    "committed-offsets": ("offset-regression", "lost-commit"),
    "consumer-no-loss": ("unseen",),
    "consumer-no-duplicates": ("redelivered",),
}
TXN_GUARANTEES = {
    "transactions": ("G1a", "torn-transaction", "lost-transaction", "G1c"),
    "exactly-once-processing": ("eos-duplicate", "eos-missing"),
}
# Judged only where a run has a fixed fault schedule: random short faults never leave
# one broker down long enough for it to mean anything.
AVAILABILITY_GUARANTEES = {"availability": ("unavailable",)}
GUARANTEES = {**CLUSTER_GUARANTEES, **GROUP_GUARANTEES, **TXN_GUARANTEES, **AVAILABILITY_GUARANTEES}


@contextlib.contextmanager
def without_cyclic_gc():
    """Checkers build large acyclic maps over a history; the cyclic GC would rescan them
    again and again while they do (a third of check_all's time at 1M operations, half
    of Jepsen's analysis)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def check_all(history: History, committed: Committed,
              final_offsets: dict[tuple[str, int], int] | None = None) -> dict[str, list[Violation]]:
    """Every checker over one history: guarantee -> its violations (empty if it held).
    `final_offsets`: a group's committed offsets read back at the end, if any."""
    with without_cyclic_gc():
        found = (check_durability(history, committed) + check_delivery(history, committed) + check_duplicates(history, committed)
                 + check_read_your_writes(history) + check_monotonic_reads(history, committed)
                 + check_send_order(history) + check_group_exclusivity(history)
                + check_commits(history, final_offsets) + check_consumption(history, committed)
                + check_transactions(history, committed) + check_processing(history, committed, final_offsets)
                 + check_availability(history))
    return {g: [v for v in found if v.name in names] for g, names in GUARANTEES.items()}


__all__ = ["AVAILABILITY_GUARANTEES", "CLUSTER_GUARANTEES", "GROUP_GUARANTEES", "TXN_GUARANTEES", "GUARANTEES", "Committed", "History", "Violation", "check_all"]
