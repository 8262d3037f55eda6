"""Clients as sans-IO state machines: producer (with partitioners) and consumer."""
