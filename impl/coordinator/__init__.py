"""Coordinators that live in the broker: consumer groups (and, later, transactions)."""
