"""A user callable, ``module:function``, called with each :class:`pumpsync.Event` on the sink's thread.

The function gets its own deep copy of each event: whatever it does to ``event.raw`` reaches no
other sink. Whatever it raises (``sys.exit()`` too) fails that one event, counted and logged; it
never ends the sink's thread or the daemon.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Callable
from typing import Any

from pumpsync.daemon.sinks.base import Sink
from pumpsync.events import Event


def load_callable(target: str) -> Callable[[Event], Any]:
    """Import ``package.module:function`` (or ``module:Class.method``)."""
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ValueError(f"{target!r} is not module:function")
    obj: Any = importlib.import_module(module_name)
    for attr in attr_path.split("."):
        obj = getattr(obj, attr)
    if not callable(obj):
        raise ValueError(f"{target!r} is not callable")
    return obj  # type: ignore[no-any-return]


class CallableSink(Sink):
    kind = "callable"

    def __init__(self, name: str, target: str, **options: Any) -> None:
        # One event per call: a failure then means exactly that event, and is counted as one.
        options["batch_size"] = 1
        options["linger"] = 0.0
        super().__init__(name, **options)
        self.target = target
        self._function: Callable[[Event], Any] | None = None

    def describe(self) -> str:
        return f"callable {self.target}"

    def open(self) -> None:
        self._function = load_callable(self.target)

    def write(self, batch: list[Event]) -> None:
        function = self._function
        assert function is not None
        for event in batch:
            try:
                function(copy.deepcopy(event))
            except Exception:
                raise
            except BaseException as exc:  # SystemExit, KeyboardInterrupt...: the user's code, not a stop request
                raise CallableFailed(f"{self.target} raised {type(exc).__name__}") from None


class CallableFailed(Exception):
    """The user's function raised something that is not an Exception (``sys.exit()``, say)."""
