"""``pumpsync daemon`` catches SIGHUP from pumpsync's first line on.

SIGHUP's default action ends the process, logrotate may send it at any moment, and the imports
before the daemon's own handler take a good part of a second (more on a loaded machine). So the
package's ``__init__`` imports this module first, and when the process is the ``pumpsync daemon``
command (the console script or ``python -m pumpsync``, never a library user's program) a SIGHUP
is remembered here and acted on once the daemon runs. What remains unguarded is the interpreter's
own start, before any of pumpsync's code can run.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from types import FrameType

_pending = False  # a SIGHUP came before the daemon's own handler was installed


def _on_early_hup(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = True


def hold_sighup() -> None:
    """Catch SIGHUP from now on (the main thread only: signal handlers live there)."""
    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, _on_early_hup)


def take_early_hup() -> bool:
    """Whether a SIGHUP came during start-up (and forget it)."""
    global _pending
    pending, _pending = _pending, False
    return pending


def _is_daemon_command() -> bool:
    argv = list(getattr(sys, "orig_argv", ()))  # the interpreter's own arguments too (3.10+)
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m" and argv[i + 1] == "pumpsync":  # python -m pumpsync daemon
            return argv[i + 2 : i + 3] == ["daemon"]
    script = sys.argv[0] if sys.argv else ""
    return os.path.basename(script) == "pumpsync" and sys.argv[1:2] == ["daemon"]


if _is_daemon_command():
    hold_sighup()
