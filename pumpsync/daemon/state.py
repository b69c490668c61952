"""Where a restarted daemon resumes: per sink and channel, the newest slot written (and the
identities of that slot's events).

Kept in ``positions.json`` in the state directory (systemd's ``StateDirectory=``, i.e.
``$STATE_DIRECTORY``, unless ``state_dir`` says otherwise), saved every second and at shutdown,
replaced atomically; a SQLite sink's own rows say it exactly. The client is started with
``since`` = the lowest of these slots (for a provider with history), and each sink skips the
back-filled events it had written, so a restart or a deploy loses nothing. After ``kill -9`` the
file may be up to a second behind: those events are written again (at least once).

Every position is owned: one state directory per daemon instance. The directory is locked
(``flock`` on ``pumpsync.lock``, which holds the holder's pid) for the daemon's whole run, so a
second daemon pointed at it fails at start, naming the directory and the holder. The file
records whose positions it holds: the source (provider and URLs as scheme, host and port, never
a key) and each sink (its name and what it writes to); a file of another source, or a sink's
entry of another target, is ignored with a warning, never resumed from.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pumpsync._secrets import safe_url
from pumpsync.daemon.sinks import Sink, SqliteSink
from pumpsync.errors import ConfigurationError

log = logging.getLogger("pumpsync.daemon")

STATE_FILE = "positions.json"
LOCK_FILE = "pumpsync.lock"

# sink name -> channel -> {"slot": newest slot written, "ids": identity keys of that slot's events}
Positions = dict[str, dict[str, dict[str, Any]]]


def default_state_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """systemd's ``$STATE_DIRECTORY`` (the first, if it names several), else None."""
    value = (os.environ if environ is None else environ).get("STATE_DIRECTORY", "")
    return value.split(":")[0] or None


class StateDirError(ConfigurationError):
    """The state directory cannot be used: unwritable, or held by another daemon."""

    def __init__(self, directory: str | os.PathLike[str], reason: str) -> None:
        super().__init__("state_dir", f"{os.fspath(directory)}: {reason}")


class StateLock:
    """The exclusive hold of one state directory (``flock``: released by the kernel when the
    process ends, also after ``kill -9``, so a stale lock file never blocks a restart)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and prove the directory writable; :class:`StateDirError` when not."""
        path = self.directory / LOCK_FILE
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StateDirError(self.directory, f"not writable ({exc.strerror or exc})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StateDirError(
                    self.directory,
                    f"in use by another pumpsync daemon (pid {holder or 'unknown'}): one state directory per daemon",
                ) from None
            raise StateDirError(self.directory, f"cannot be locked ({exc.strerror or exc})") from None
        try:  # the holder's pid, for the next one's error; and a real write proves the directory writable
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            probe = self.directory / (STATE_FILE + ".tmp")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            os.close(fd)
            raise StateDirError(self.directory, f"not writable ({exc.strerror or exc})") from None
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # the lock goes with the descriptor; the file stays (removing it would race)


def check_state_dir(directory: str | os.PathLike[str]) -> None:
    """``--check`` and start-up: the directory is writable and no other daemon holds it."""
    lock = StateLock(directory)
    lock.acquire()
    lock.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def source_identity(provider: str, urls: Sequence[str]) -> str:
    """Whose positions these are: the provider and its URLs as scheme, host and port (no key)."""
    return " ".join([provider, *(safe_url(url) for url in urls)])


class PositionFile:
    """``positions.json`` of one source; a missing, unreadable or foreign file holds nothing."""

    def __init__(self, directory: str | os.PathLike[str], provider: str, source: str | None = None) -> None:
        self.path = Path(directory) / STATE_FILE
        self.provider = provider
        self.source = source or provider
        self._saved: Positions = {}
        self._targets: dict[str, str] = {}  # sink name -> what it writes to (Sink.describe())

    def load(self, targets: Mapping[str, str] | None = None) -> Positions:
        """The stored positions of the sinks whose name and target (``targets``) match."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s): starting without stored positions", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("provider") != self.provider:
            if isinstance(data, dict):
                log.warning("%s holds the positions of another provider (%s): not resuming from them",
                            self.path, str(data.get("provider"))[:80])  # fmt: skip
            return {}
        source = data.get("source")
        if source is not None and source != self.source:
            log.warning("%s holds the positions of another source (%s, this daemon reads %s): not resuming from them",
                        self.path, str(source)[:200], self.source)  # fmt: skip
            return {}
        sinks, stored_targets = data.get("sinks"), data.get("targets")
        if not isinstance(sinks, dict):
            return {}
        stored_targets = stored_targets if isinstance(stored_targets, dict) else {}
        positions: Positions = {}
        for name, channels in sinks.items():
            if not isinstance(channels, dict):
                continue
            stored, current = stored_targets.get(name), (targets or {}).get(str(name))
            if stored is not None and current is not None and stored != current:
                log.warning("%s: sink %s wrote to %s, now to %s: not resuming it from there",
                            self.path, name, str(stored)[:200], current)  # fmt: skip
                continue
            positions[str(name)] = {ch: v for ch, v in channels.items() if _valid(v)}
        self._saved = positions
        return positions

    def save(self, positions: Positions, targets: Mapping[str, str] | None = None) -> None:
        """Write if changed: a temporary file, fsync, rename (a crash leaves the old or the new file)."""
        targets = {name: targets[name] for name in positions if name in targets} if targets else {}
        if positions == self._saved and targets == self._targets:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(STATE_FILE + ".tmp")
        record = {"provider": self.provider, "source": self.source, "sinks": positions, "targets": targets}
        text = json.dumps(record, sort_keys=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self._saved, self._targets = positions, targets


def _valid(value: Any) -> bool:
    slot, ids = (value.get("slot"), value.get("ids", [])) if isinstance(value, dict) else (None, None)
    return type(slot) is int and isinstance(ids, list) and all(isinstance(i, str) for i in ids)


def sink_targets(sinks: Sequence[Sink]) -> dict[str, str]:
    """What each sink writes to (no secrets): a stored position belongs to one target."""
    return {sink.name: sink.describe() for sink in sinks}


def sink_positions(sinks: Sequence[Sink]) -> Positions:
    """What each sink has written, now (only sinks that wrote an event with a channel and a slot)."""
    return {sink.name: state for sink in sinks if (state := sink.positions.state())}


def restore(sinks: Sequence[Sink], stored: Positions, provider: str) -> int | None:
    """Give each sink its stored positions; the slot to resume the stream from (None: nothing stored)."""
    lowest: int | None = None
    for sink in sinks:
        known = dict(stored.get(sink.name, {}))
        if isinstance(sink, SqliteSink):  # its rows are the exact record, also after kill -9
            known.update(sink.stored_positions(provider))
        if not known:
            continue
        sink.positions.restore(known)
        low = min(v["slot"] for v in known.values())
        lowest = low if lowest is None else min(lowest, low)
    return lowest
