"""What every owner of a worker thread needs: to end it, and to hear from it without a reference cycle."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import ParamSpec

P = ParamSpec("P")


def join_thread(thread: threading.Thread, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``thread`` to end; True if it has (or never started).

    Safe to call from the thread itself (it then only reports) and with a negative timeout.
    """
    if thread.ident is not None and thread is not threading.current_thread():
        thread.join(max(0.0, timeout))
    return not thread.is_alive()


def upward(method: Callable[P, None]) -> Callable[P, None]:
    """A child's callback to its owner's ``method`` that does not keep the owner alive.

    Owners hold their children; a child reports upward through callbacks given at construction.
    Those are weak, so the object graph has no reference cycle: closing needs no cycle-cutting,
    and dropping a closed client frees it (its sockets, its tables) at once, without the cyclic
    garbage collector. A report to an owner that is gone is dropped (nobody is left to hear it)."""
    ref = weakref.WeakMethod(method)

    def report(*args: P.args, **kwargs: P.kwargs) -> None:
        owner_method = ref()
        if owner_method is not None:
            owner_method(*args, **kwargs)

    return report
