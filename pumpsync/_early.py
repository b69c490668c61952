"""``pumpsync daemon`` handles SIGHUP, SIGTERM and SIGINT from pumpsync's first line on.

SIGHUP's and SIGTERM's default actions end the process (SIGHUP with the wrong exit status),
logrotate or systemd may send them at any moment, and the imports before the daemon's own
handlers take a good part of a second (more on a loaded machine). So the package's ``__init__``
imports this module first, and when the process is the ``pumpsync daemon`` command (the console
script or ``python -m pumpsync``, never a library user's program):

- a SIGHUP is remembered, and the daemon logs that it came before the sinks were open (there is
  nothing to reopen yet: the files are opened after it);
- a SIGTERM or SIGINT ends the start-up at once, cleanly, with exit status 0 (``SystemExit``
  raised where the main thread is; nothing has been started that needs stopping).

The daemon's own handlers replace these once it runs. What remains unguarded is the
interpreter's own start, before any of pumpsync's code can run.
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


_stop: int | None = None  # a SIGTERM/SIGINT came: in case something on the way swallowed the SystemExit


def _on_early_stop(signum: int, frame: FrameType | None) -> None:
    global _stop
    if _stop is None:
        _stop = signum
        os.write(2, f"pumpsync: {signal.Signals(signum).name} during start-up: exiting\n".encode())
    raise SystemExit(0)


def hold_signals() -> None:
    """Handle SIGHUP, SIGTERM and SIGINT from now on (the main thread only: signal handlers live there)."""
    if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGHUP, _on_early_hup)  # first: its default action ends the process
        signal.signal(signal.SIGINT, _on_early_stop)  # (Python's own handler before: KeyboardInterrupt)
        signal.signal(signal.SIGTERM, _on_early_stop)  # last: once the kernel says it is handled, all three are


def take_early_hup() -> bool:
    """Whether a SIGHUP came during start-up (and forget it)."""
    global _pending
    pending, _pending = _pending, False
    return pending


def take_early_stop() -> int | None:
    """The SIGTERM or SIGINT that came during start-up, if any (and forget it)."""
    global _stop
    signum, _stop = _stop, None
    return signum


def _is_daemon_command() -> bool:
    argv = list(getattr(sys, "orig_argv", ()))  # the interpreter's own arguments too (3.10+)
    for i, arg in enumerate(argv[:-1]):
        if arg == "-m" and argv[i + 1] == "pumpsync":  # python -m pumpsync daemon
            return argv[i + 2 : i + 3] == ["daemon"]
    script = sys.argv[0] if sys.argv else ""
    return os.path.basename(script) == "pumpsync" and sys.argv[1:2] == ["daemon"]


if _is_daemon_command():
    hold_signals()
