"""Where a restarted daemon resumes: per sink and channel, the newest slot written (and the
identities of that slot's events).

Kept in ``positions.json`` in the state directory (systemd's ``StateDirectory=``, i.e.
``$STATE_DIRECTORY``, unless ``state_dir`` says otherwise), saved every second and at shutdown,
replaced atomically; a SQLite sink's own rows say it exactly. The client is started with
``since`` = the lowest of these slots (for a provider with history), and each sink skips the
back-filled events it had written, so a restart or a deploy loses nothing. After ``kill -9`` the
file may be up to a second behind: those events are written again (at least once).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pumpsync.daemon.sinks import Sink, SqliteSink

log = logging.getLogger("pumpsync.daemon")

STATE_FILE = "positions.json"

# sink name -> channel -> {"slot": newest slot written, "ids": identity keys of that slot's events}
Positions = dict[str, dict[str, dict[str, Any]]]


def default_state_dir(environ: Mapping[str, str] | None = None) -> str | None:
    """systemd's ``$STATE_DIRECTORY`` (the first, if it names several), else None."""
    value = (os.environ if environ is None else environ).get("STATE_DIRECTORY", "")
    return value.split(":")[0] or None


class PositionFile:
    """``positions.json`` of one provider; a missing, unreadable or foreign file holds nothing."""

    def __init__(self, directory: str | os.PathLike[str], provider: str) -> None:
        self.path = Path(directory) / STATE_FILE
        self.provider = provider
        self._saved: Positions = {}

    def load(self) -> Positions:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read %s (%s): starting without stored positions", self.path, exc)
            return {}
        if not isinstance(data, dict) or data.get("provider") != self.provider:
            return {}
        sinks = data.get("sinks")
        if not isinstance(sinks, dict):
            return {}
        positions: Positions = {}
        for name, channels in sinks.items():
            if isinstance(channels, dict):
                positions[str(name)] = {ch: v for ch, v in channels.items() if _valid(v)}
        self._saved = positions
        return positions

    def save(self, positions: Positions) -> None:
        """Write if changed: a temporary file, fsync, rename (a crash leaves the old or the new file)."""
        if positions == self._saved:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(STATE_FILE + ".tmp")
        text = json.dumps({"provider": self.provider, "sinks": positions}, sort_keys=True)
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        self._saved = positions


def _valid(value: Any) -> bool:
    slot, ids = (value.get("slot"), value.get("ids", [])) if isinstance(value, dict) else (None, None)
    return type(slot) is int and isinstance(ids, list) and all(isinstance(i, str) for i in ids)


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
