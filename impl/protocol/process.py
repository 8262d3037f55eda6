"""The one shape of every sans-IO state machine, and the one way each dispatches.

Brokers, controllers, producers and consumers are `Process`es: both runtimes (the
simulator's event loop and the real runtime's core thread) call `start`, `handle` and
`on_timer` and carry out the `Effect`s they return. Inside, a process routes a message by
its type and a timer by the kind its key starts with, through one table built from
`@handles(...)` marks - no `_on_<Type>` name lookups, no isinstance chains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

from kafkaproof.impl.protocol.messages import Effect


@runtime_checkable
class Process(Protocol):
    def start(self, now: int) -> list[Effect]: ...

    def handle(self, src: str, msg: object, now: int) -> list[Effect]: ...

    def on_timer(self, key: tuple, now: int) -> list[Effect]: ...


def handles(*what: type | str) -> Callable:
    """Mark a method as the handler of these message types, or of timers of these kinds
    (a timer key is a tuple whose first item is its kind)."""
    def mark(fn: Callable) -> Callable:
        fn.handles = getattr(fn, "handles", ()) + what
        return fn
    return mark


class Dispatcher:
    """A class whose `@handles` methods form its routing table (built once per class)."""

    routes: dict[type | str, str] = {}

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[type | str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, fn in vars(klass).items():
                for what in getattr(fn, "handles", ()):
                    table[what] = name
        cls.routes = table

    def route(self, what: type | str) -> Callable | None:
        name = self.routes.get(what)
        return None if name is None else getattr(self, name)


class TimerTable:
    """Setting a timer's key again replaces it. Both runtimes keep their pending timers in
    a heap and cannot take one out cheaply, so each setting gets a token and a timer fires
    only while its token is the latest for its (node, key)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, tuple], int] = {}

    def set(self, node: str, key: tuple) -> int:
        token = self._tokens[(node, key)] = self._tokens.get((node, key), 0) + 1
        return token

    def live(self, node: str, key: tuple, token: int) -> bool:
        return self._tokens.get((node, key)) == token
