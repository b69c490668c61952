"""Replay (issue 17, item 12): recorded JSONL / SQLite files give back the same events, in order, paced."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import pumpsync
from pumpsync.daemon.sinks import build_sinks
from pumpsync.errors import ConfigurationError, EndOfStream
from pumpsync.events import Event
from pumpsync.providers.replay import Pacer, Recording, Source, replay
from pumpsync.simulator import Simulator


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Event], Path, Path]:
    """Live events from the simulator, written by the daemon's own JSONL and SQLite sinks."""
    folder = tmp_path_factory.mktemp("recorded")
    jsonl, db = folder / "events.jsonl", folder / "events.sqlite3"
    sinks = build_sinks([{"type": "jsonl", "path": str(jsonl)}, {"type": "sqlite", "path": str(db)}])
    events: list[Event] = []
    with Simulator(providers=("anaxer",), port=0, rate=200, seed=4) as sim:
        channels = {"creations": {}, "trades": {}, "graduations": {}}
        with pumpsync.connect("anaxer", api_key="k", url=sim.url("anaxer"), channels=channels) as client:
            while len(events) < 60:
                events.append(client.get(timeout=10))
    for sink in sinks:
        sink.start()
        for event in events:
            assert sink.offer(event)
        sink.close(time.monotonic() + 10)
        assert sink.join(10)
    return events, jsonl, db


@pytest.mark.parametrize("scheme", ["file", "sqlite"])
def test_a_recording_gives_back_the_same_events_in_order(recorded: tuple[list[Event], Path, Path], scheme: str) -> None:
    events, jsonl, db = recorded
    url = f"file:{jsonl}" if scheme == "file" else f"sqlite:{db}"
    replayed = list(replay(url, speed=0))
    assert replayed == events
    assert all(e.channel in ("creations", "trades", "graduations") for e in replayed)  # channel survives


def test_the_sqlite_suffix_reads_sqlite_and_since_skips_earlier_slots(recorded: tuple[list[Event], Path, Path]) -> None:
    events, _, db = recorded
    assert Source.parse(f"file:{db}").form == "sqlite"
    middle = sorted(e.slot for e in events if e.slot is not None)[len(events) // 2]
    later = list(Recording(Source.parse(f"file://{db}"), since=middle))
    assert later == [e for e in events if e.slot is not None and e.slot >= middle]
    by_time = list(Recording(Source.parse(f"file:{db}"), since=events[-1].received_at))
    assert by_time == [e for e in events if e.received_at >= events[-1].received_at]


def test_lines_that_are_not_events_are_skipped_and_counted(tmp_path: Path, recorded) -> None:
    events, jsonl, _ = recorded
    broken = tmp_path / "broken.jsonl"
    lines = jsonl.read_text(encoding="utf-8").splitlines()
    broken.write_text("\n".join(["not json", lines[0], "[1]", '{"kind":"trade"}', "", lines[1]]) + "\n")
    recording = Recording(Source.parse(f"file:{broken}"))
    assert list(recording) == events[:2]
    assert recording.skipped == 3


def test_bad_urls_name_the_option(tmp_path: Path) -> None:
    for url in ("events.jsonl", "http://x/events.jsonl", f"file:{tmp_path}/missing.jsonl", "file://remote/x.jsonl"):
        with pytest.raises(ConfigurationError) as info:
            Source.parse(url)
        assert info.value.option == "url"
    (tmp_path / "other.db").write_bytes(b"")
    with pytest.raises(ConfigurationError, match="not a pumpsync recording"):
        list(Recording(Source.parse(f"sqlite:{tmp_path / 'other.db'}")))


def test_the_pacer_keeps_the_recorded_gaps_divided_by_speed() -> None:
    now = [100.0]
    pacer = Pacer(speed=10, clock=lambda: now[0])
    first = Event("trade", "anaxer", "M", "s", 1, None, 1_000_000, 0, False, {})
    assert pacer.due(first) == 100.0
    assert pacer.due(first._replace(received_at=1_005_000)) == pytest.approx(100.5)  # 5 s recorded, 10x
    assert pacer.due(first._replace(received_at=999_000)) == 100.0  # out of order: not earlier than the start
    fast = Pacer(speed=0, clock=lambda: now[0])
    fast.due(first)
    now[0] = 200.0
    assert fast.due(first._replace(received_at=9_999_999)) == 100.0  # due at once
    with pytest.raises(ConfigurationError):
        Pacer(speed=-1)


def test_a_set_stop_ends_a_paced_replay_at_once(recorded: tuple[list[Event], Path, Path]) -> None:
    _, jsonl, _ = recorded
    stop = threading.Event()
    stream = replay(f"file:{jsonl}", speed=1e-6, stop=stop)  # the second event would be due in years
    assert next(stream) is not None
    stop.set()
    assert list(stream) == []


# ---------------------------------------------------------------- replay as a provider: the same code, live or recorded
def as_replayed(events: list[Event]) -> list[Event]:
    return [e._replace(connection=0) for e in events]  # counted against the replaying connection


@pytest.mark.parametrize("scheme", ["file", "sqlite"])
def test_connect_replay_iterates_the_recording_and_ends(recorded, scheme: str) -> None:
    events, jsonl, db = recorded
    url = f"file:{jsonl}" if scheme == "file" else f"sqlite:{db}"
    with pumpsync.connect("replay", url=url, speed=0) as stream:
        replayed = list(stream)  # ends at the end of the recording
    assert replayed == as_replayed(events)
    assert isinstance(stream.error, EndOfStream)


def test_a_small_queue_is_never_overrun_however_fast_the_replay(recorded) -> None:
    events, jsonl, _ = recorded
    with pumpsync.connect("replay", url=f"file:{jsonl}", speed=0, queue_size=4) as stream:
        replayed = list(stream)
    assert replayed == as_replayed(events) and stream.stats()["dropped"] == 0


def test_the_recorded_pace_is_kept_times_speed(tmp_path: Path, recorded) -> None:
    events, _, _ = recorded
    spaced = tmp_path / "spaced.jsonl"  # three events recorded 1 s apart
    lines = [json.dumps(e._replace(received_at=1_000_000 + 1000 * i).to_dict()) for i, e in enumerate(events[:3])]
    spaced.write_text("\n".join(lines) + "\n")
    start = time.monotonic()
    with pumpsync.connect("replay", url=f"file:{spaced}", speed=4) as stream:
        arrivals = [(event, time.monotonic() - start) for event in stream]
    assert [e.received_at for e, _ in arrivals] == [1_000_000, 1_001_000, 1_002_000]
    # Paced, not all at once: the last is due 0.5 s after the first (an order, not a timing bound).
    assert arrivals[2][1] - arrivals[0][1] >= 0.45


def test_since_skips_what_came_before(recorded) -> None:
    events, _, db = recorded
    middle = sorted(e.slot for e in events if e.slot is not None)[len(events) // 2]
    with pumpsync.connect("replay", url=f"sqlite:{db}", since=middle, speed=0) as stream:
        assert list(stream) == as_replayed([e for e in events if e.slot is not None and e.slot >= middle])


def test_bad_replay_options_name_the_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        pumpsync.Client("replay", url=f"file:{tmp_path}/missing.jsonl")
    assert info.value.option == "url"
    (tmp_path / "x.jsonl").write_text("")
    with pytest.raises(ConfigurationError) as info:
        pumpsync.Client("replay", url=f"file:{tmp_path}/x.jsonl", speed=-1)
    assert info.value.option == "speed"
    with pytest.raises(ConfigurationError):
        pumpsync.Client("openpump", api_key="k", speed=2)  # a replay-only option


def test_stream_replays_a_recording_and_exits_0(recorded) -> None:
    events, _, db = recorded
    result = subprocess.run(
        [sys.executable, "-m", "pumpsync", "stream", "--provider", "replay", "--url", f"sqlite:{db}",
         "--speed", "0", "--format", "jsonl"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [Event.from_dict(json.loads(line)) for line in result.stdout.splitlines()] == as_replayed(events)
    assert result.stderr == ""


def test_the_daemon_replays_a_recording_into_a_sink_and_exits_0(recorded, tmp_path) -> None:
    """The end of a recording is the end of the job, not a failure (exit 0, not 1)."""
    events, jsonl, _ = recorded
    out = tmp_path / "copy.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pumpsync", "daemon", "--provider", "replay", "--url", f"file:{jsonl}",
         "--speed", "0", "--sink", f"jsonl:{out}", "--metrics-addr", "off", "--fresh"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [Event.from_dict(json.loads(line)) for line in out.read_text().splitlines()] == as_replayed(events)


# ---------------------------------------------------------------- hostile recordings (issue 22, item 12)


def _lines(events: list[Event], middle: str) -> str:
    good = [json.dumps(e.to_dict()) for e in events]
    return "\n".join([*good[:2], middle, *good[2:]]) + "\n"


def test_a_line_with_an_iso_received_at_is_skipped_and_the_replay_ends(
    recorded: tuple[list[Event], Path, Path], tmp_path: Path
) -> None:
    """Before: the replay never ended."""
    events = recorded[0][:5]
    bad = {**events[0].to_dict(), "received_at": "2024-01-01T00:00:00Z", "signature": "iso"}
    path = tmp_path / "iso.jsonl"
    path.write_text(_lines(events, json.dumps(bad)))
    recording = Recording(Source.parse(f"file:{path}"))
    assert list(recording) == events and recording.skipped == 1
    with pumpsync.connect("replay", url=f"file:{path}", speed=0) as client:
        got = []
        with pytest.raises(EndOfStream):
            while True:
                got.append(client.get(timeout=10))
    assert got == [e._replace(connection=0) for e in events]


def test_a_line_over_the_bound_is_skipped_without_being_held(
    recorded: tuple[list[Event], Path, Path], tmp_path: Path
) -> None:
    """Before: a 1 GiB line took 2.2 GB. Now a line over MAX_LINE is read a chunk at a time and skipped."""
    import tracemalloc

    from pumpsync.providers.replay import MAX_LINE

    events = recorded[0][:4]
    path = tmp_path / "long.jsonl"
    with path.open("w") as file:
        file.write(_lines(events[:2], '{"kind":"trade","raw":"' + "x" * (6 * MAX_LINE) + '"}'))
        file.write("".join(json.dumps(e.to_dict()) + "\n" for e in events[2:]))
    recording = Recording(Source.parse(f"file:{path}"))
    tracemalloc.start()
    try:
        got = list(recording)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got == events and recording.skipped == 1
    assert peak < 2.5 * MAX_LINE, peak  # the line is 6 * MAX_LINE: never held whole


def test_an_sqlite_file_that_is_not_a_recording_is_one_line_fatal(
    recorded: tuple[list[Event], Path, Path], tmp_path: Path
) -> None:
    """Before: retried forever."""
    import sqlite3

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE notes (x TEXT)")
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    for path in (other, garbage):
        with pytest.raises(ConfigurationError, match="not a pumpsync recording"):
            pumpsync.connect("replay", url=f"sqlite:{path}")
        run = subprocess.run(
            [sys.executable, "-m", "pumpsync", "stream", "--provider", "replay", "--url", f"sqlite:{path}"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        errors = [line for line in run.stderr.splitlines() if "not a pumpsync recording" in line]
        assert run.returncode != 0 and "Traceback" not in run.stderr and len(errors) == 1, run.stderr
        assert "not a pumpsync recording" in run.stderr
    # A file that stops being a recording after the client was configured: the stream ends with the error.
    db = tmp_path / "swapped.sqlite3"
    db.write_bytes(recorded[2].read_bytes())
    client = pumpsync.Client("replay", url=f"sqlite:{db}", speed=0)
    db.write_bytes(other.read_bytes())
    with client, pytest.raises(pumpsync.errors.ProviderRefused, match="not a pumpsync recording"):
        client.get(timeout=10)
