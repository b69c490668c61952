"""What every owner of a worker thread needs to end it."""

from __future__ import annotations

import threading


def join_thread(thread: threading.Thread, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for ``thread`` to end; True if it has (or never started).

    Safe to call from the thread itself (it then only reports) and with a negative timeout.
    """
    if thread.ident is not None and thread is not threading.current_thread():
        thread.join(max(0.0, timeout))
    return not thread.is_alive()
